//! Flags, exit codes and configuration layering, through the binary.

use serde_json::{json, Value};

use crate::support::ServerBuilder;

fn print_config(builder: ServerBuilder) -> Value {
    let finished = builder.args(&["--print-config"]).run();
    assert!(finished.status.success(), "{finished:?}");
    serde_json::from_str(&finished.stdout).unwrap_or_else(|e| panic!("{e}: {}", finished.stdout))
}

#[test]
fn version_and_help() {
    let finished = ServerBuilder::new().args(&["--version"]).run();
    assert!(finished.status.success());
    assert_eq!(
        finished.stdout.trim(),
        format!("agent-server {}", env!("CARGO_PKG_VERSION"))
    );

    let finished = ServerBuilder::new().args(&["--help"]).run();
    assert!(finished.status.success());
    for flag in [
        "--host",
        "--port",
        "--check-browser",
        "--reload",
        "--print-config",
        "--version",
    ] {
        assert!(finished.stdout.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn bad_flags_exit_2() {
    let finished = ServerBuilder::new().args(&["--bogus"]).run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(finished.stderr.contains("--bogus"), "{}", finished.stderr);
    let finished = ServerBuilder::new().args(&["--port", "http"]).run();
    assert_eq!(finished.status.code(), Some(2));
}

#[test]
fn check_browser_is_not_built_yet() {
    let finished = ServerBuilder::new().args(&["--check-browser"]).run();
    assert!(!finished.status.success());
    assert!(
        finished.stderr.contains("not built yet"),
        "{}",
        finished.stderr
    );
}

#[test]
fn default_host_depends_on_keys() {
    assert_eq!(print_config(ServerBuilder::new())["host"], "127.0.0.1");
    assert_eq!(
        print_config(ServerBuilder::new().session_key("k"))["host"],
        "0.0.0.0"
    );
    assert_eq!(
        print_config(ServerBuilder::new().session_key("k").env("OH_HOST", "::1"))["host"],
        "::1"
    );
}

#[test]
fn file_then_env_then_flags() {
    let file = json!({"port": 1111, "log_level": "debug", "lease_ttl_seconds": 7, "secret_key": "from-file"});
    let config = print_config(ServerBuilder::new().config_file(&file));
    assert_eq!(
        (config["port"].clone(), config["log_level"].clone()),
        (json!(1111), json!("debug"))
    );
    assert_eq!(config["secret_key"], "**********");

    let env = ServerBuilder::new()
        .config_file(&file)
        .env("OH_PORT", "2222")
        .env("OH_SECRET_KEY_IS_NONE", "1");
    let config = print_config(env);
    assert_eq!(config["port"], 2222);
    assert_eq!(config["log_level"], "debug");
    assert_eq!(config["lease_ttl_seconds"], 7.0);
    assert_eq!(config["secret_key"], Value::Null);

    let flags = ServerBuilder::new()
        .config_file(&file)
        .env("OH_PORT", "2222")
        .args(&["--port", "3333", "--host", "127.0.0.2", "--print-config"]);
    let finished = flags.run();
    let config: Value = serde_json::from_str(&finished.stdout).unwrap();
    assert_eq!(
        (config["port"].clone(), config["host"].clone()),
        (json!(3333), json!("127.0.0.2"))
    );
}

#[test]
fn lists_nested_models_and_redaction() {
    let config = print_config(
        ServerBuilder::new()
            .env("OH_SESSION_API_KEYS_0", "a")
            .env("OH_SESSION_API_KEYS_1", "007")
            .env("OH_SESSION_API_KEYS_3", "after-a-gap")
            .env(
                "OH_ALLOW_CORS_ORIGINS",
                r#"["https://app.example.com","https://b.example.com"]"#,
            )
            .env("OH_WEBHOOKS_0_BASE_URL", "http://127.0.0.1:9/hooks")
            .env(
                "OH_WEBHOOKS_0_HEADERS",
                r#"{"Authorization":"Bearer hook-secret","X-Trace":"t1"}"#,
            )
            .env("OH_WEBHOOKS_0_EVENT_BUFFER_SIZE", "9")
            .env("OH_PREVIOUS_SECRET_KEYS_0", "old-secret"),
    );
    assert_eq!(
        config["session_api_keys"],
        json!(["**********", "**********"])
    );
    assert_eq!(
        config["allow_cors_origins"],
        json!(["https://app.example.com", "https://b.example.com"])
    );
    let hook = &config["webhooks"][0];
    assert_eq!(hook["base_url"], "http://127.0.0.1:9/hooks");
    assert_eq!(hook["event_buffer_size"], 9);
    assert_eq!(
        hook["headers"],
        json!({"Authorization": "**********", "X-Trace": "t1"})
    );
    let text = config.to_string();
    for secret in ["hook-secret", "old-secret", "007", "after-a-gap"] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
}

#[test]
fn legacy_session_key() {
    let config = print_config(ServerBuilder::new().env("SESSION_API_KEY", "legacy"));
    assert_eq!(config["session_api_keys"], json!(["**********"]));
    assert_eq!(config["host"], "0.0.0.0");
}

#[test]
fn bad_config_exits_2_naming_source_and_key() {
    let finished = ServerBuilder::new().env("OH_PORT", "eighty").run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("OH_PORT") && finished.stderr.contains("`port`"),
        "{}",
        finished.stderr
    );

    let finished = ServerBuilder::new()
        .config_file(&json!({"log_format": "xml"}))
        .run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("config.json") && finished.stderr.contains("`log_format`"),
        "{}",
        finished.stderr
    );

    let finished = ServerBuilder::new()
        .config_file(&json!({"max_concurrent_runs": "ten"}))
        .run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("`max_concurrent_runs`"),
        "{}",
        finished.stderr
    );

    let finished = ServerBuilder::new()
        .env("OH_MAX_CONCURRENT_RUNS", "0")
        .run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("OH_MAX_CONCURRENT_RUNS"),
        "{}",
        finished.stderr
    );

    let builder = ServerBuilder::new();
    let path = builder.dir().join("broken.json");
    std::fs::write(&path, "{\"port\": ").unwrap();
    let finished = builder
        .env("OPENHANDS_AGENT_SERVER_CONFIG_PATH", path.to_str().unwrap())
        .run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("broken.json") && finished.stderr.contains("invalid JSON"),
        "{}",
        finished.stderr
    );

    let builder = ServerBuilder::new();
    let dir = builder.dir().display().to_string();
    let finished = builder
        .env("OPENHANDS_AGENT_SERVER_CONFIG_PATH", &dir)
        .run();
    assert_eq!(finished.status.code(), Some(2));
    assert!(
        finished.stderr.contains("cannot read"),
        "{}",
        finished.stderr
    );
}

#[test]
fn default_config_file_is_read_from_the_working_directory() {
    let builder = ServerBuilder::new();
    std::fs::create_dir_all(builder.dir().join("workspace")).unwrap();
    std::fs::write(
        builder
            .dir()
            .join("workspace/openhands_agent_server_config.json"),
        r#"{"max_concurrent_runs": 3}"#,
    )
    .unwrap();
    assert_eq!(print_config(builder)["max_concurrent_runs"], 3);
}
