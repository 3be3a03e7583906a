//! The tool descriptions and parameter schemas must be exactly what the
//! Python server sent to the LLM (`fixtures/llm_tools_sample.json`), key
//! order included, once the agent's `security_risk`/`summary` are removed.

use std::path::PathBuf;
use std::sync::Arc;

use agent_server::tools::{builtin, ToolEnv, ToolSettings};
use serde_json::{Map, Value};

fn env() -> ToolEnv {
    ToolEnv {
        working_dir: PathBuf::from("/tmp/anchor-ws/work"),
        conversation_dir: PathBuf::from("/tmp/anchor-ws/conversations/x"),
        params: Map::new(),
        vision: true,
        settings: Arc::new(ToolSettings::default()),
    }
}

#[test]
fn definitions_match_the_recorded_request() {
    let sample: Value =
        serde_json::from_str(include_str!("fixtures/llm_tools_sample.json")).unwrap();
    let factories = [
        agent_server::tools::file_editor::factory(),
        agent_server::tools::task_tracker::factory(),
        agent_server::tools::glob::factory(),
        agent_server::tools::grep::factory(),
        agent_server::tools::apply_patch::factory(),
        builtin::finish_factory(),
        builtin::think_factory(),
    ];
    let env = env();
    let mut checked = 0;
    for recorded in sample["tools"].as_array().unwrap() {
        let f = &recorded["function"];
        let name = f["name"].as_str().unwrap();
        let factory = factories.iter().find(|x| x.name == name).unwrap();
        let tools = (factory.create)(&env).unwrap();
        assert_eq!(tools.len(), 1);
        let def = tools[0].definition();
        assert_eq!(def.name, name);
        assert_eq!(
            def.description,
            f["description"].as_str().unwrap(),
            "{name} description"
        );

        let mut params = f["parameters"].clone();
        let props = params["properties"].as_object_mut().unwrap();
        assert_eq!(
            props.shift_remove("security_risk").is_some(),
            !def.annotations.read_only
        );
        props.shift_remove("summary").unwrap();
        assert_eq!(
            serde_json::to_string(&def.parameters).unwrap(),
            serde_json::to_string(&params).unwrap(),
            "{name} parameters"
        );
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[test]
fn file_editor_without_vision_omits_the_image_line() {
    let mut env = env();
    env.vision = false;
    let tools = (agent_server::tools::file_editor::factory().create)(&env).unwrap();
    let description = &tools[0].definition().description;
    assert!(!description.contains("is an image file"));
    assert!(description.starts_with("Custom editing tool for viewing, creating and editing files in plain-text format\n* State is persistent across command calls and discussions with the user\n* If `path` is a text file"));
}

#[test]
fn annotations_and_class_names() {
    let env = env();
    let expect = [
        (
            "file_editor",
            "FileEditorTool",
            "FileEditorAction",
            "FileEditorObservation",
            Some("file_editor"),
            false,
            true,
            false,
        ),
        (
            "task_tracker",
            "TaskTrackerTool",
            "TaskTrackerAction",
            "TaskTrackerObservation",
            None,
            false,
            false,
            true,
        ),
        (
            "glob",
            "GlobTool",
            "GlobAction",
            "GlobObservation",
            Some("glob"),
            true,
            false,
            true,
        ),
        (
            "grep",
            "GrepTool",
            "GrepAction",
            "GrepObservation",
            Some("grep"),
            true,
            false,
            true,
        ),
        (
            "apply_patch",
            "ApplyPatchTool",
            "ApplyPatchAction",
            "ApplyPatchObservation",
            Some("apply_patch"),
            false,
            true,
            false,
        ),
    ];
    let factories = [
        agent_server::tools::file_editor::factory(),
        agent_server::tools::task_tracker::factory(),
        agent_server::tools::glob::factory(),
        agent_server::tools::grep::factory(),
        agent_server::tools::apply_patch::factory(),
    ];
    for (factory, (name, class, action, obs, title, ro, destructive, idempotent)) in
        factories.iter().zip(expect)
    {
        let tools = (factory.create)(&env).unwrap();
        let def = tools[0].definition();
        assert_eq!(
            (
                def.name.as_str(),
                def.class_name.as_str(),
                def.action_kind.as_str(),
                def.observation_kind.as_str()
            ),
            (name, class, action, obs)
        );
        assert_eq!(def.annotations.title.as_deref(), title, "{name}");
        assert_eq!(
            (
                def.annotations.read_only,
                def.annotations.destructive,
                def.annotations.idempotent,
                def.annotations.open_world
            ),
            (ro, destructive, idempotent, false),
            "{name}"
        );
        assert!(
            factory.module_qualname.starts_with("openhands.tools.")
                && factory.module_qualname.ends_with(".definition")
        );
    }
    let mut with_params = env.clone();
    with_params.params.insert("x".into(), Value::from(1));
    let err = (builtin::finish_factory().create)(&with_params)
        .err()
        .unwrap();
    assert_eq!(err, "FinishTool doesn't accept parameters");
}
