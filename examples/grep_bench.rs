//! Times the `grep` tool: `grep_bench <dir> <pattern> [runs]`.
//!
//! Prints the number of matching files and the median wall time of `runs`
//! searches (default 5) in milliseconds; used by `bench/grep_vs_rg.sh`.

use std::path::PathBuf;
use std::time::Instant;

use agent_server::tools::grep::GrepTool;
use agent_server::tools::{ExecContext, Tool};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: grep_bench <dir> <pattern> [runs]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let pattern = args.next().ok_or(usage)?;
    let runs: usize = args
        .next()
        .map(|r| r.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);

    let tool = GrepTool::new(dir);
    let action = tool.validate(json!({"pattern": pattern}).as_object().ok_or(usage)?)?;
    let ctx = ExecContext::default();
    let mut times = Vec::with_capacity(runs);
    let mut found = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let obs = tool
            .execute(&action, &ctx)
            .await
            .map_err(|e| format!("{e:?}"))?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        found = obs.json["matches"].as_array().map_or(0, Vec::len);
    }
    times.sort_by(f64::total_cmp);
    println!("matches={found} median_ms={:.1}", times[times.len() / 2]);
    Ok(())
}
