//! Browser tool set figures: time from the first browser call to its
//! observation (cold), per-call times once warm, and the memory of the
//! Chromium processes per open session. Run it with `bench/browser.sh`.
//!
//! Pages come from the test page server on 127.0.0.1; nothing touches the
//! network. Timings include the dev-profile build of this crate, which is
//! negligible next to Chromium's own work.

#[path = "../tests/support/pages.rs"]
pub mod pages;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_server::tools::browser::{
    browser_root_dir, factory, processes_with_marker, shutdown_browsers,
};
use agent_server::tools::{BrowserSettings, ExecContext, Tool, ToolEnv, ToolSettings};
use serde_json::{json, Value};

struct Set {
    tools: Vec<Arc<dyn Tool>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Set {
    fn new() -> Set {
        let work = tempfile::tempdir().expect("temp dir");
        let conversation = tempfile::tempdir().expect("temp dir");
        let env = ToolEnv {
            vision: true,
            working_dir: work.path().to_path_buf(),
            conversation_dir: conversation.path().to_path_buf(),
            params: serde_json::Map::new(),
            settings: Arc::new(ToolSettings {
                browser: BrowserSettings {
                    enabled: true,
                    ..BrowserSettings::default()
                },
                ..ToolSettings::default()
            }),
        };
        let tools = (factory().create)(&env).expect("browser tools");
        Set {
            tools,
            _dirs: (work, conversation),
        }
    }

    /// Runs one call and returns how long it took to the observation.
    async fn timed(&self, name: &str, args: Value) -> Duration {
        let tool = self
            .tools
            .iter()
            .find(|t| t.definition().name == name)
            .expect("known tool");
        let action = tool
            .validate(args.as_object().expect("object"))
            .expect("valid");
        let started = Instant::now();
        let obs = tool
            .execute(&action, &ExecContext::default())
            .await
            .expect("executed");
        let took = started.elapsed();
        assert!(!obs.is_error(), "{name} failed: {:?}", obs.json["content"]);
        took
    }

    async fn close(&self) {
        for tool in &self.tools {
            tool.close().await;
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:>9}  p90 {:>9}  min {:>9}  (n={})",
        ms(pick(0.5)),
        ms(pick(0.9)),
        ms(samples[0]),
        samples.len()
    )
}

/// `(RSS, PSS)` in KiB summed over the processes naming `marker`.
async fn memory_kib(marker: &Path) -> (u64, u64) {
    let pids = processes_with_marker(marker).await;
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let mut rss = 0;
    let mut pss = 0;
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        rss += field(&status, "VmRSS:");
        let rollup =
            std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        pss += field(&rollup, "Pss:");
    }
    (rss, pss)
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let site = pages::PageServer::start().await;
    let home = format!("{}/index.html", site.origin());
    let rounds = 3;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average {}",
        load.split_whitespace().next().unwrap_or("?")
    );

    println!("== cold: first browser call of a conversation (browser_navigate)");
    let mut fully_cold = Vec::new();
    let mut warm_driver = Vec::new();
    for _ in 0..rounds {
        shutdown_browsers().await;
        let set = Set::new();
        fully_cold.push(set.timed("browser_navigate", json!({"url": home})).await);
        set.close().await;
        let set = Set::new();
        warm_driver.push(set.timed("browser_navigate", json!({"url": home})).await);
        set.close().await;
    }
    println!("  chromedriver and Chromium start: {}", summary(fully_cold));
    println!(
        "  Chromium start (chromedriver up): {}",
        summary(warm_driver)
    );

    println!("== warm: per call on an open browser");
    let set = Set::new();
    set.timed("browser_navigate", json!({"url": home})).await;
    let n = 20;
    let mut calls: Vec<(&str, Value, Vec<Duration>)> = vec![
        (
            "browser_navigate",
            json!({"url": site.url("page2.html")}),
            Vec::new(),
        ),
        ("browser_get_state", json!({}), Vec::new()),
        (
            "browser_get_state",
            json!({"include_screenshot": true}),
            Vec::new(),
        ),
        ("browser_get_content", json!({}), Vec::new()),
        ("browser_scroll", json!({}), Vec::new()),
        ("browser_list_tabs", json!({}), Vec::new()),
        ("browser_get_storage", json!({}), Vec::new()),
    ];
    for _ in 0..n {
        for (name, args, samples) in &mut calls {
            samples.push(set.timed(name, args.clone()).await);
        }
    }
    let mut clicks = Vec::new();
    for _ in 0..n {
        set.timed("browser_navigate", json!({"url": home})).await;
        set.timed("browser_get_state", json!({})).await;
        clicks.push(set.timed("browser_click", json!({"index": 1})).await);
    }
    for (name, args, samples) in calls {
        let label = match args.get("include_screenshot") {
            Some(_) => format!("{name} (screenshot)"),
            None => name.to_string(),
        };
        println!("  {label:<34} {}", summary(samples));
    }
    println!(
        "  {:<34} {}",
        "browser_click (link, navigates)",
        summary(clicks)
    );
    set.close().await;

    println!("== memory of open sessions (each on the fixture home page)");
    let profiles = browser_root_dir().join("profile-");
    let driver = browser_root_dir().join("chromedriver-");
    let mut open = Vec::new();
    for count in [1usize, 2, 4] {
        while open.len() < count {
            let set = Set::new();
            set.timed("browser_navigate", json!({"url": home})).await;
            open.push(set);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss, pss) = memory_kib(&profiles).await;
        println!(
            "  {count} session(s): Chromium processes RSS {} (PSS {}), per session RSS {} (PSS {})",
            mib(rss),
            mib(pss),
            mib(rss / count as u64),
            mib(pss / count as u64)
        );
    }
    let (driver_rss, driver_pss) = memory_kib(&driver).await;
    let field = |file: &str, name: &str| -> u64 {
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let own_rss = field("/proc/self/status", "VmRSS:");
    let own_pss = field("/proc/self/smaps_rollup", "Pss:");
    println!(
        "  chromedriver RSS {} (PSS {}); this process (the tools, as in the server) RSS {:.1} MiB (PSS {:.1} MiB)",
        mib(driver_rss),
        mib(driver_pss),
        own_rss as f64 / 1024.0,
        own_pss as f64 / 1024.0
    );
    for set in &open {
        set.close().await;
    }
    shutdown_browsers().await;
}
