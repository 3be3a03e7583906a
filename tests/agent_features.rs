//! Skills (agent.md §7) and the vision check (§2 step 4) through the real
//! binary: a working directory with `AGENTS.md`, a nested rule, a keyword
//! skill and an AgentSkill, user skills from `HOME`, inline and disabled
//! skills; what the first LLM request carries, the path rule on the
//! observation of a tool touching its directory, `invoke_skill`; a model
//! without vision meeting an image; and the features this server refuses
//! at creation rather than ignore (MCP servers, hooks, critics).

#[path = "support/mod.rs"]
pub mod support;

#[path = "support/fake_llm.rs"]
pub mod fake_llm;

#[path = "agent_util/mod.rs"]
pub mod agent_util;

use std::path::Path;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use agent_util::{call, create, events, info, kinds, of_kind, run, wait_status, Harness};
use fake_llm::Turn;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The requests of the agent itself (the ones with tools).
fn agent_requests(h: &Harness) -> Vec<Value> {
    h.llm
        .requests()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| b["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .collect()
}

fn tool_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// The text of every message of `role` in a Chat Completions request.
fn texts(request: &Value, role: &str) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == role)
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        })
        .collect()
}

/// The stored state of the only conversation under `data`.
fn stored_state(data: &Path) -> Value {
    let dirs: Vec<_> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("metadata.json").is_file())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    serde_json::from_slice(&std::fs::read(dirs[0].join("metadata.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn project_user_and_inline_skills_reach_the_model() {
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().display().to_string();
    let h = Harness::start(&[("HOME", &home_path)]).await;
    let w = &h.work;
    write(&w.join("AGENTS.md"), "Root rule: run make check.");
    write(&w.join("server/AGENTS.md"), "Server rule: never block.");
    write(&w.join("server/main.rs"), "fn main() {}\n");
    write(
        &w.join(".openhands/skills/deploy.md"),
        "---\nname: deploy\ntriggers:\n  - deploy\n---\nDeploy with ./ship.sh only.",
    );
    write(
        &w.join(".agents/skills/notes/SKILL.md"),
        "---\nname: notes\ndescription: Keeps release notes tidy.\n---\nNotes body, branch !`echo rendered-7c1`.",
    );
    write(
        &home.path().join(".openhands/skills/homeskill.md"),
        "---\nname: homeskill\ntriggers:\n  - homeword\n---\nFrom the home directory.",
    );
    write(
        &home.path().join(".openhands/skills/hidden.md"),
        "---\nname: hidden\ntriggers:\n  - deploy\n---\nDisabled skill text.",
    );
    write(
        &w.join(".openhands/memory/MEMORY.md"),
        "- The build needs nightly-4e2.",
    );
    write(
        &home.path().join(".openhands/memory/MEMORY.md"),
        "- The user prefers short answers.",
    );
    h.llm.add_script(
        "skills",
        vec![
            Turn::tool(
                "file_editor",
                json!({"command": "view", "path": w.join("server/main.rs")}),
            ),
            Turn::tool(
                "file_editor",
                json!({"command": "view", "path": w.join("server/main.rs")}),
            ),
            Turn::tool("invoke_skill", json!({"name": "notes"})),
            Turn::tool("invoke_skill", json!({"name": "nope"})),
            Turn::tool("finish", json!({"message": "done"})),
        ],
    );
    let mut c = h.client().await;
    let mut body = h.body("skills", &["file_editor"]);
    body["initial_message"]["content"][0]["text"] = json!(format!(
        "{} please deploy",
        body["initial_message"]["content"][0]["text"]
            .as_str()
            .unwrap()
    ));
    body["agent"]["agent_context"] = json!({
        "load_project_skills": true,
        "load_user_skills": true,
        "load_public_skills": true,
        "load_memory": true,
        "disabled_skills": ["hidden"],
        "user_message_suffix": "Suffix-b2e9.",
        "skills": [{"name": "inline-one", "content": "Inline skill body.",
                    "trigger": {"type": "keyword", "keywords": ["inlineword"]},
                    "description": "An inline skill."}]
    });
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;

    let reqs = agent_requests(&h);
    assert_eq!(reqs.len(), 5);
    let first = &reqs[0];
    assert_eq!(
        tool_names(first),
        ["file_editor", "finish", "think", "invoke_skill"]
    );
    let system = texts(first, "system").join("\n");
    assert!(system.contains("<REPO_CONTEXT>"), "{system}");
    assert!(system.contains("Root rule: run make check."));
    assert!(
        !system.contains("Server rule"),
        "path rules wait for a path"
    );
    let skills_block = system
        .split("<SKILLS>")
        .nth(1)
        .and_then(|s| s.split("</SKILLS>").next())
        .expect("a <SKILLS> section");
    assert!(skills_block.contains("invoke_skill"));
    for listed in ["notes", "deploy", "homeskill", "inline-one"] {
        assert!(
            skills_block.contains(&format!("<name>{listed}</name>")),
            "{listed} missing from {skills_block}"
        );
    }
    assert!(skills_block.contains("<description>Keeps release notes tidy.</description>"));
    assert!(!skills_block.contains("hidden"));
    assert!(!skills_block.contains("agents:server"));
    let user = texts(first, "user").join("\n");
    assert!(user.contains("Deploy with ./ship.sh only."), "{user}");
    assert!(user.contains("Suffix-b2e9."));
    assert!(!user.contains("Disabled skill text."));

    let evs = events(&mut c, &id).await;
    let observations = of_kind(&evs, "ObservationEvent");
    assert_eq!(observations.len(), 5, "{:?}", kinds(&evs));
    assert_eq!(observations[4]["tool_name"], "finish");
    let rule = observations[0]["extended_content"].to_string();
    assert!(rule.contains("Server rule: never block."), "{rule}");
    assert!(rule.contains("server/**"));
    assert_eq!(observations[1]["extended_content"], json!([]));
    // The rule reaches the model with the observation.
    let second = serde_json::to_string(&reqs[1]["messages"]).unwrap();
    assert!(second.contains("Server rule: never block."));

    let invoked = &observations[2]["observation"];
    assert_eq!(invoked["kind"], "InvokeSkillObservation");
    assert_eq!(invoked["skill_name"], "notes");
    assert_eq!(invoked["is_error"], false);
    let text = invoked["content"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Notes body, branch rendered-7c1.\n\n---\nThis skill is located at `.agents/skills/notes`."),
        "{text}"
    );
    let unknown = &observations[3]["observation"];
    assert_eq!(unknown["is_error"], true);
    assert_eq!(
        unknown["content"][0]["text"],
        "Unknown skill 'nope'. Available skills: agents, deploy, homeskill, inline-one, notes."
    );

    let state = info(&mut c, &id).await;
    assert_eq!(state["invoked_skills"], json!(["notes"]));
    // Not part of the info (nor in Python's): read the stored state.
    let stored = stored_state(&h.data);
    assert_eq!(stored["activated_path_rules"], json!(["agents:server"]));
    assert_eq!(stored["invoked_skills"], json!(["notes"]));
    assert_eq!(state["activated_knowledge_skills"], json!(["deploy"]));
}

#[tokio::test]
async fn skills_stay_out_without_load_project_skills() {
    let h = Harness::start(&[]).await;
    write(&h.work.join("AGENTS.md"), "Root rule: run make check.");
    write(
        &h.work.join(".agents/skills/notes/SKILL.md"),
        "---\nname: notes\ndescription: Keeps release notes tidy.\n---\nNotes.",
    );
    h.llm.add_script(
        "plain",
        vec![Turn::tool("finish", json!({"message": "done"}))],
    );
    let mut c = h.client().await;
    let id = create(&mut c, &h.body("plain", &["file_editor"])).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    let first = &agent_requests(&h)[0];
    assert_eq!(tool_names(first), ["file_editor", "finish", "think"]);
    let system = texts(first, "system").join("\n");
    assert!(!system.contains("Root rule"));
    assert!(!system.contains("<SKILLS>"));
}

/// A 1×1 PNG.
const PNG: [u8; 69] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0,
    0, 0, 144, 119, 83, 222, 0, 0, 0, 12, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 0, 3, 1,
    1, 0, 201, 254, 146, 239, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// The file editor's image line, present only for a model with vision.
const IMAGE_LINE: &str = "`view` displays the image content";

#[tokio::test]
async fn images_from_tools_reach_only_models_with_vision() {
    let h = Harness::start(&[]).await;
    std::fs::write(h.work.join("dot.png"), PNG).unwrap();
    let view = json!({"command": "view", "path": h.work.join("dot.png")});
    for script in ["seeing", "blind"] {
        h.llm.add_script(
            script,
            vec![
                Turn::tool("file_editor", view.clone()),
                Turn::tool("finish", json!({"message": "looked"})),
            ],
        );
    }
    let mut c = h.client().await;
    let seeing = create(&mut c, &h.body("seeing", &["file_editor"])).await;
    run(&mut c, &seeing).await;
    wait_status(&mut c, &seeing, &["finished"]).await;
    let mut body = h.body("blind", &["file_editor"]);
    body["agent"]["llm"]["disable_vision"] = json!(true);
    let blind = create(&mut c, &body).await;
    run(&mut c, &blind).await;
    wait_status(&mut c, &blind, &["finished"]).await;

    let reqs = agent_requests(&h);
    assert_eq!(reqs.len(), 4);
    let (with, without): (Vec<&Value>, Vec<&Value>) = reqs
        .iter()
        .partition(|r| r["tools"][0].to_string().contains(IMAGE_LINE));
    assert_eq!(with.len(), 2, "the seeing conversation's tool names images");
    assert_eq!(without.len(), 2);
    assert!(with[1].to_string().contains("data:image/png;base64,"));
    assert!(!without[1].to_string().contains("data:image/png"));
    // Both observations keep the image in the event.
    for id in [&seeing, &blind] {
        let evs = events(&mut c, id).await;
        let obs = of_kind(&evs, "ObservationEvent")[0].to_string();
        assert!(obs.contains("data:image/png;base64,"), "{obs}");
    }
}

#[tokio::test]
async fn an_image_for_a_model_without_vision_is_answered_without_a_call() {
    use base64::Engine;
    let h = Harness::start(&[]).await;
    h.llm.add_script(
        "picture",
        vec![Turn::tool("finish", json!({"message": "unexpected"}))],
    );
    let mut c = h.client().await;
    let mut body = h.body("picture", &["file_editor"]);
    body["agent"]["llm"]["disable_vision"] = json!(true);
    let data = base64::engine::general_purpose::STANDARD.encode(PNG);
    body["initial_message"]["content"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "image", "image_urls": [format!("data:image/png;base64,{data}")]}));
    let id = create(&mut c, &body).await;
    run(&mut c, &id).await;
    wait_status(&mut c, &id, &["finished"]).await;
    assert!(agent_requests(&h).is_empty(), "no LLM call");
    let evs = events(&mut c, &id).await;
    let replies: Vec<&Value> = of_kind(&evs, "MessageEvent")
        .into_iter()
        .filter(|e| e["source"] == "agent")
        .collect();
    assert_eq!(replies.len(), 1, "{:?}", kinds(&evs));
    assert_eq!(
        replies[0]["llm_message"]["content"][0]["text"],
        "I received your image, but the currently selected model (openai/gpt-4o) does not support image understanding. Please switch to a multimodal model to analyze the image."
    );
    assert_eq!(info(&mut c, &id).await["execution_status"], "finished");
}

#[tokio::test]
async fn unsupported_features_are_refused_at_creation() {
    let h = Harness::start(&[]).await;
    let mut c = h.client().await;
    let mut refused = Vec::new();
    for (field, value) in [
        (
            "mcp_config",
            json!({"mcpServers": {"fetch": {"command": "uvx", "env": {"TOKEN": "mcp-sekrit"}}}}),
        ),
        ("critic", json!({"kind": "AgentFinishedCritic"})),
        (
            "hook_config",
            json!({"stop": [{"matcher": "*", "hooks": [{"command": "true"}]}]}),
        ),
    ] {
        let mut body = h.body("none", &[]);
        match field {
            "hook_config" => body[field] = value,
            _ => body["agent"][field] = value,
        }
        let (status, errs) = call(&mut c, Method::POST, "/api/conversations", Some(&body)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{errs}");
        assert!(!errs.to_string().contains("mcp-sekrit"));
        let msg = errs["detail"][0]["msg"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.contains("not supported by this server"), "{errs}");
        refused.push(errs["detail"][0]["loc"].clone());
    }
    assert_eq!(
        refused,
        [
            json!(["body", "agent", "mcp_config"]),
            json!(["body", "agent", "critic"]),
            json!(["body", "hook_config"])
        ]
    );
    let (status, list) = call(&mut c, Method::GET, "/api/conversations/search", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["items"], json!([]), "nothing was created");
    // Empty or disabled configurations stay accepted.
    let mut body = h.body("none", &[]);
    body["agent"]["mcp_config"] = json!({"off": {"command": "x", "enabled": false}});
    body["agent"]["critic"] = Value::Null;
    body["hook_config"] = json!({"pre_tool_use": []});
    create(&mut c, &body).await;
}
