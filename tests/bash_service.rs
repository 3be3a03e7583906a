//! The bash service against real processes and a real events directory.

use std::time::Duration;

use agent_server::bash::{
    BashEvent, BashEventKind, BashSearch, BashService, BashServiceConfig, BashServiceError,
    ExecuteBashRequest, SortOrder, MAX_CHUNK_CHARS,
};
use agent_server::util::{ids, time};
use serde_json::json;
use tempfile::TempDir;

async fn service_in(dir: &TempDir, default_cwd: Option<String>) -> BashService {
    BashService::open(BashServiceConfig {
        events_dir: dir.path().join("bash_events"),
        default_cwd,
        retention_seconds: None,
    })
    .await
    .unwrap()
}

fn request(command: &str, timeout: i64) -> ExecuteBashRequest {
    ExecuteBashRequest {
        command: command.into(),
        cwd: None,
        timeout,
    }
}

/// Whether any process of process group `pgid` is alive (zombies excepted).
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .any(|stat| {
            let rest = &stat[stat.rfind(')').unwrap() + 1..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            fields[0] != "Z" && fields[2] == pgid.to_string()
        })
}

/// Waits (bounded) until no process of group `pgid` is alive: signals are
/// delivered at once, but dying takes a moment.
async fn group_ends(pgid: i32) -> bool {
    for _ in 0..100 {
        if !group_alive(pgid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn outputs_of(service: &BashService, command_id: uuid::Uuid) -> Vec<BashEvent> {
    service
        .search(BashSearch {
            command_id: Some(command_id),
            ..BashSearch::default()
        })
        .await
        .items
}

#[tokio::test]
async fn execute_separates_streams_and_reports_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let output = service
        .execute(request("echo out; echo err >&2; exit 3", 300))
        .await
        .unwrap();
    assert_eq!(output.stdout.as_deref(), Some("out\n"));
    assert_eq!(output.stderr.as_deref(), Some("err\n"));
    assert_eq!(output.exit_code, Some(3));
    assert_eq!(output.order, 0);
    let value = BashEvent::Output(output.clone()).to_json();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "timestamp",
            "command_id",
            "order",
            "exit_code",
            "stdout",
            "stderr",
            "kind"
        ]
    );
    assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    assert_eq!(value["id"].as_str().unwrap().len(), 32);

    let cwd = dir.path().canonicalize().unwrap().display().to_string();
    let output = service
        .execute(ExecuteBashRequest {
            command: "pwd".into(),
            cwd: Some(cwd.clone()),
            timeout: 300,
        })
        .await
        .unwrap();
    assert_eq!(output.stdout, Some(format!("{cwd}\n")));
    assert_eq!(output.stderr, None);
    service.shutdown().await;
}

#[tokio::test]
async fn a_timeout_kills_the_group_and_reports_minus_one() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let pid_file = dir.path().join("pid");
    let command = format!("echo $$ > {}; sleep 30 & sleep 30", pid_file.display());
    let output = service.execute(request(&command, 1)).await.unwrap();
    assert_eq!(output.exit_code, Some(-1));
    assert_eq!(output.stdout, None);
    assert_eq!(output.stderr, None);
    let pgid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(group_ends(pgid).await);
    service.shutdown().await;
}

#[tokio::test]
async fn stop_terminates_a_running_command() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let command = service.start(request("sleep 30", 300)).await.unwrap();
    assert_eq!(command.cwd, None);
    assert!(service.stop(command.id).await);
    // The final output is stored right after the process ends.
    let mut outputs = Vec::new();
    for _ in 0..100 {
        outputs = outputs_of(&service, command.id).await;
        if !outputs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let [BashEvent::Output(output)] = outputs.as_slice() else {
        panic!("expected one output, got {outputs:?}");
    };
    assert_eq!(output.exit_code, Some(-15));
    // Stopping a finished command succeeds; an unknown one is not found.
    assert!(service.stop(command.id).await);
    assert!(!service.stop(ids::new_uuid()).await);
    service.shutdown().await;
}

#[tokio::test]
async fn large_output_is_chunked_with_a_shared_order() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let total = MAX_CHUNK_CHARS * 2 + 10;
    let command = format!("head -c {total} /dev/zero | tr '\\0' a; echo e >&2");
    let merged = service.execute(request(&command, 300)).await.unwrap();
    assert_eq!(merged.stdout.as_ref().map(String::len), Some(total));
    assert_eq!(merged.stderr.as_deref(), Some("e\n"));
    assert_eq!(merged.order, 2);
    let outputs = outputs_of(&service, merged.command_id).await;
    let orders: Vec<i64> = outputs
        .iter()
        .map(|e| match e {
            BashEvent::Output(o) => o.order,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(orders, [0, 1, 2]);
    let later = service
        .search(BashSearch {
            command_id: Some(merged.command_id),
            order_gt: Some(0),
            ..BashSearch::default()
        })
        .await;
    assert_eq!(later.items.len(), 2);
    service.shutdown().await;
}

#[tokio::test]
async fn search_filters_sorts_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let before = time::now();
    let mut commands = Vec::new();
    for i in 0..5 {
        let out = service
            .execute(request(&format!("echo {i}"), 300))
            .await
            .unwrap();
        commands.push(out.command_id);
    }
    let page = service
        .search(BashSearch {
            kind: Some(BashEventKind::Command),
            limit: 2,
            ..BashSearch::default()
        })
        .await;
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].id(), commands[0]);
    let next = page.next_page_id.clone().unwrap();
    assert!(next.contains("_BashCommand_"), "{next}");
    assert!(next.ends_with(&ids::hex(&commands[2])));
    let page2 = service
        .search(BashSearch {
            kind: Some(BashEventKind::Command),
            limit: 2,
            page_id: Some(next),
            ..BashSearch::default()
        })
        .await;
    let got: Vec<_> = page2.items.iter().map(BashEvent::id).collect();
    assert_eq!(got, [commands[2], commands[3]]);

    let newest = service
        .search(BashSearch {
            kind: Some(BashEventKind::Output),
            sort_order: SortOrder::TimestampDesc,
            limit: 1,
            ..BashSearch::default()
        })
        .await;
    let BashEvent::Output(last) = &newest.items[0] else {
        panic!("expected an output");
    };
    assert_eq!(last.command_id, commands[4]);
    assert_eq!(last.stdout.as_deref(), Some("4\n"));

    let all = service.search(BashSearch::default()).await;
    assert_eq!(all.items.len(), 10);
    assert_eq!(all.next_page_id, None);
    let middle = all.items[5].timestamp();
    let early = service
        .search(BashSearch {
            timestamp_lt: Some(middle),
            ..BashSearch::default()
        })
        .await;
    assert_eq!(early.items.len(), 5);
    let late = service
        .search(BashSearch {
            timestamp_gte: Some(middle),
            ..BashSearch::default()
        })
        .await;
    assert_eq!(late.items.len(), 5);
    let since = service
        .search(BashSearch {
            timestamp_gte: Some(before),
            ..BashSearch::default()
        })
        .await;
    assert_eq!(since.items.len(), 10);

    // Get by hex or dashed id; unknown ids are None.
    let hex = ids::hex(&commands[1]);
    let dashed = ids::dashed(&commands[1]);
    let got = service.get(&hex).await.unwrap();
    assert_eq!(got.id(), commands[1]);
    let batch = service
        .batch_get(&[dashed, ids::hex(&ids::new_uuid())])
        .await;
    assert_eq!(batch[0].as_ref().map(BashEvent::id), Some(commands[1]));
    assert!(batch[1].is_none());

    assert_eq!(service.clear().await.unwrap(), 10);
    assert!(service.search(BashSearch::default()).await.items.is_empty());
    service.shutdown().await;
}

#[tokio::test]
async fn events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = service_in(&dir, None).await;
    let output = first.execute(request("echo kept", 300)).await.unwrap();
    first.shutdown().await;
    drop(first);

    let second = service_in(&dir, None).await;
    let all = second.search(BashSearch::default()).await;
    assert_eq!(all.items.len(), 2);
    let BashEvent::Command(command) = &all.items[0] else {
        panic!("expected the command first");
    };
    assert_eq!(command.command, "echo kept");
    assert_eq!(all.items[1], BashEvent::Output(output.clone()));
    // The stored file is the upstream JSON.
    let file = std::fs::read_dir(dir.path().join("bash_events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("_BashOutput_"))
        .unwrap();
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(stored, BashEvent::Output(output).to_json());
    second.shutdown().await;
}

#[tokio::test]
async fn retention_purges_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    service.execute(request("true", 300)).await.unwrap();
    let cutoff = time::now();
    service.execute(request("true", 300)).await.unwrap();
    assert_eq!(service.purge_older_than(cutoff).await.unwrap(), 2);
    assert_eq!(service.search(BashSearch::default()).await.items.len(), 2);
    service.shutdown().await;

    // The periodic task purges at start; with a zero retention, everything.
    let purging = BashService::open(BashServiceConfig {
        events_dir: dir.path().join("bash_events"),
        default_cwd: None,
        retention_seconds: Some(0),
    })
    .await
    .unwrap();
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = purging.search(BashSearch::default()).await.items.len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0);
    purging.shutdown().await;
}

#[tokio::test]
async fn live_subscribers_see_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let stored = service.execute(request("echo old", 300)).await.unwrap();

    let mut live = service.subscribe(false).unwrap();
    let mut replay = service.subscribe(true).unwrap();
    let command = service
        .start(request("for i in 1 2 3; do echo $i; done", 300))
        .await
        .unwrap();

    let BashEvent::Command(first) = live.next().await.unwrap() else {
        panic!("expected the command first");
    };
    assert_eq!(first.id, command.id);
    let BashEvent::Output(out) = live.next().await.unwrap() else {
        panic!("expected the output");
    };
    assert_eq!(out.stdout.as_deref(), Some("1\n2\n3\n"));
    assert_eq!(out.exit_code, Some(0));

    let mut replayed = Vec::new();
    for _ in 0..4 {
        replayed.push(replay.next().await.unwrap());
    }
    assert_eq!(replayed[1], BashEvent::Output(stored));
    assert_eq!(replayed[2].id(), command.id);
    assert_eq!(replayed[3].id(), out.id);
    service.shutdown().await;
    assert!(live.next().await.is_none());
}

#[tokio::test]
async fn a_slow_subscriber_catches_up_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let mut slow = service.subscribe(false).unwrap();
    for i in 0..45 {
        service
            .execute(request(&format!("echo {i}"), 300))
            .await
            .unwrap();
    }
    let expected: Vec<_> = service
        .search(BashSearch::default())
        .await
        .items
        .iter()
        .map(BashEvent::id)
        .collect();
    assert_eq!(expected.len(), 90);
    let mut got = Vec::new();
    for _ in 0..90 {
        got.push(slow.next().await.unwrap().id());
    }
    assert_eq!(got, expected);
    service.shutdown().await;
}

#[tokio::test]
async fn subscribers_are_limited() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let held: Vec<_> = (0..50).map(|_| service.subscribe(false).unwrap()).collect();
    assert_eq!(
        service.subscribe(false).err(),
        Some(BashServiceError::TooManySubscribers)
    );
    drop(held);
    assert!(service.subscribe(false).is_ok());
    service.shutdown().await;
}

#[tokio::test]
async fn shutdown_kills_running_commands() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let pid_file = dir.path().join("pid");
    let command = format!("echo $$ > {}; sleep 1000 & sleep 1000", pid_file.display());
    service.start(request(&command, 300)).await.unwrap();
    let mut pgid = None;
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                pgid = Some(pid);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pgid = pgid.expect("the command started");
    assert!(group_alive(pgid));
    service.shutdown().await;
    assert!(group_ends(pgid).await);
    assert_eq!(
        service.start(request("true", 300)).await.err(),
        Some(BashServiceError::Closed)
    );
}

#[tokio::test]
async fn a_scoped_service_keeps_cwd_inside_its_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    std::fs::create_dir_all(workspace.join("sub")).unwrap();
    let root = workspace.display().to_string();
    let service = service_in(&dir, Some(root.clone())).await;
    let inside = ExecuteBashRequest {
        cwd: Some(format!("{root}/sub")),
        ..request("pwd", 300)
    };
    assert_eq!(service.check_cwd(&inside).await, Ok(()));
    let escape = ExecuteBashRequest {
        cwd: Some(format!("{root}/sub/../../")),
        ..request("pwd", 300)
    };
    assert_eq!(
        service.check_cwd(&escape).await,
        Err("cwd must be inside the conversation workspace".to_string())
    );
    let command = service.start(request("pwd", 300)).await.unwrap();
    assert_eq!(command.cwd.as_deref(), Some(root.as_str()));
    let json = BashEvent::Command(command).to_json();
    assert_eq!(json["cwd"], json!(root));
    service.shutdown().await;
}

#[tokio::test]
async fn a_command_that_cannot_start_reports_an_error_output() {
    let dir = tempfile::tempdir().unwrap();
    let service = service_in(&dir, None).await;
    let output = service
        .execute(ExecuteBashRequest {
            cwd: Some("/nonexistent-dir-for-test".into()),
            ..request("true", 300)
        })
        .await
        .unwrap();
    assert_eq!(output.exit_code, Some(-1));
    assert!(output
        .stderr
        .as_deref()
        .unwrap()
        .starts_with("Error executing command: "));
    service.shutdown().await;
}
