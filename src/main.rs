//! The `agent-server` binary: flags and exit codes; everything else lives in the library.
//!
//! Exit codes: 0 after a clean shutdown (or `--help`, `--version`,
//! `--print-config`, a passing `healthcheck`), 1 when the server fails at run
//! time (or the health check fails), 2 for a bad command line or configuration.

use std::process::ExitCode;

use agent_server::config::{self, Env, Overrides};
use agent_server::{healthcheck, server, telemetry, tools};

/// musl's allocator serialises every allocation on one lock, which the
/// static release build feels under concurrent load; mimalloc does not
/// (measured: README "Measured figures").
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The flags, defined once: name, value placeholder, help text.
const FLAGS: &[(&str, Option<&str>, &str)] = &[
    (
        "host",
        Some("ADDR"),
        "address to bind (default: 0.0.0.0 with session keys, 127.0.0.1 without)",
    ),
    (
        "port",
        Some("PORT"),
        "port to bind (default: 8000; 0 picks a free one)",
    ),
    (
        "check-browser",
        None,
        "check that the browser tool can start, then exit",
    ),
    (
        "reload",
        None,
        "accepted for compatibility with the Python server; ignored",
    ),
    (
        "print-config",
        None,
        "print the effective configuration as JSON (secrets hidden) and exit",
    ),
    ("version", None, "print the version and exit"),
    ("help", None, "print this help and exit"),
];

/// What the command line asks for.
#[derive(Default)]
struct Args {
    overrides: Overrides,
    check_browser: bool,
    healthcheck: bool,
    reload: bool,
    print_config: bool,
    version: bool,
    help: bool,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;

    let mut args = Args::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("host") => args.overrides.host = Some(parser.value()?.string()?),
            Long("port") => args.overrides.port = Some(parser.value()?.parse()?),
            Long("check-browser") => args.check_browser = true,
            Long("reload") => args.reload = true,
            Long("print-config") => args.print_config = true,
            Long("version") | Short('V') => args.version = true,
            Long("help") | Short('h') => args.help = true,
            Value(v) if v == "healthcheck" => args.healthcheck = true,
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args)
}

fn usage() -> String {
    let mut text = format!(
        "agent-server {}\nThe OpenHands agent server: REST and WebSocket APIs for AI-agent conversations.\n\nUsage: agent-server [OPTIONS]\n       agent-server healthcheck    exit 0 if the configured server answers 200 on /health\n\nOptions:\n",
        env!("CARGO_PKG_VERSION")
    );
    for (name, value, help) in FLAGS {
        let flag = match value {
            Some(v) => format!("--{name} <{v}>"),
            None => format!("--{name}"),
        };
        text.push_str(&format!("  {flag:<22} {help}\n"));
    }
    text.push_str(
        "\nSettings also come from the JSON file named by OPENHANDS_AGENT_SERVER_CONFIG_PATH\n\
         (default workspace/openhands_agent_server_config.json) and from OH_* variables;\n\
         see README.md.\n",
    );
    text
}

/// The process environment; variables that are not UTF-8 cannot be settings and are skipped.
fn process_env() -> Env {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// `--check-browser`: start chromedriver and Chromium, load a page, report.
fn check_browser(config: &config::Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("agent-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let settings = tools::registry::tool_settings(config);
    let outcome = runtime.block_on(async {
        let outcome = tools::browser::check_browser(&settings.browser).await;
        tools::browser::shutdown_browsers().await;
        outcome
    });
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(problem) => {
            eprintln!("agent-server: the browser tool cannot run here:\n{problem}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("agent-server: {e}\n\n{}", usage());
            return ExitCode::from(2);
        }
    };
    if args.help {
        print!("{}", usage());
        return ExitCode::SUCCESS;
    }
    if args.version {
        println!("agent-server {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }

    let env = process_env();
    let config = match config::load(&env, &args.overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("agent-server: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        let text = serde_json::to_string_pretty(&config.redacted_json()).unwrap_or_default();
        println!("{text}");
        return ExitCode::SUCCESS;
    }
    if args.healthcheck {
        return match healthcheck::target(&config).and_then(healthcheck::check) {
            Ok(status) => {
                println!("{status}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("agent-server: healthcheck: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if args.check_browser {
        return check_browser(&config);
    }

    if let Err(e) = telemetry::init(&config, &env) {
        eprintln!("agent-server: {e}");
        return ExitCode::from(2);
    }
    // A panic anywhere (a handler's is caught and answered with a 500) is logged like everything else.
    std::panic::set_hook(Box::new(|info| tracing::error!("panic: {info}")));
    if args.reload {
        tracing::info!("--reload is accepted for compatibility and ignored: this server does not reload itself");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("agent-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Every terminal session dies with the server, however `run` ends.
    let terminals = tools::terminal::shutdown_guard();
    let outcome = runtime.block_on(server::run(config));
    drop(terminals);
    // Blocking tasks (a read on a terminal, …) must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("agent-server: {e}");
            ExitCode::FAILURE
        }
    }
}
