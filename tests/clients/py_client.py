"""Drives the real Python SDK (openhands-sdk 1.58.2) remote conversation
against a running agent-server. Started by tests/real_clients.rs with:

    AGENT_SERVER_URL  http://127.0.0.1:PORT
    AGENT_SERVER_KEY  the session key
    WORK_DIR          the agents' working directory
    FAKE_LLM_URL      the fake provider's base_url (.../v1)

The fake LLM's scripts are chosen by `[script:NAME]` markers in the first
message; the Rust test registers them. Every check raises on failure (exit
1); on success the script prints one JSON report on its last stdout line,
which the Rust test compares with the server's own view.
"""

import json
import os
import sys
import threading
import time
import uuid

import httpx
from pydantic import SecretStr

# The SDK decodes a tool's events only once the tool module is imported.
import openhands.tools.file_editor  # noqa: F401
import openhands.tools.task_tracker  # noqa: F401
from openhands.sdk import LLM, Agent, Conversation, Tool, Workspace
from openhands.sdk.conversation.impl.remote_conversation import (
    RemoteConversation,
    WebSocketCallbackClient,
)
from openhands.sdk.conversation.exceptions import ConversationRunError
from openhands.sdk.conversation.state import ConversationExecutionStatus
from openhands.sdk.event import (
    ActionEvent,
    AgentErrorEvent,
    ConversationStateUpdateEvent,
    InterruptEvent,
    MessageEvent,
    ObservationEvent,
    PauseEvent,
    UserRejectObservation,
)
from openhands.sdk.event.conversation_error import ConversationErrorEvent
from openhands.sdk.security.confirmation_policy import AlwaysConfirm, NeverConfirm
from openhands.sdk.security.llm_analyzer import LLMSecurityAnalyzer
from openhands.tools.terminal import TerminalAction, TerminalObservation

HOST = os.environ["AGENT_SERVER_URL"]
KEY = os.environ["AGENT_SERVER_KEY"]
WORK = os.environ["WORK_DIR"]
LLM_URL = os.environ["FAKE_LLM_URL"]

# Every wait is bounded: the whole script must end well within a minute.
WAIT_S = 20.0


START = time.monotonic()


def step(name):
    """Marks progress on stderr, so a failure's output shows where it was."""
    print(f"[py_client {time.monotonic() - START:6.2f}s] {name}", file=sys.stderr, flush=True)


def wait_for(what, predicate):
    deadline = time.monotonic() + WAIT_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.025)


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def new_agent(stream=False):
    llm = LLM(
        model="openai/fake-model",
        base_url=LLM_URL,
        api_key=SecretStr("sk-fake"),
        usage_id="agent",
        num_retries=0,
        stream=stream,
    )
    return Agent(
        llm=llm,
        tools=[Tool(name="terminal"), Tool(name="file_editor"), Tool(name="task_tracker")],
    )


def new_workspace(api_key=KEY):
    return Workspace(host=HOST, api_key=api_key, working_dir=WORK)


def open_conversation(stream=False, **kwargs):
    seen = []
    conversation = Conversation(
        agent=new_agent(stream),
        workspace=new_workspace(),
        callbacks=[seen.append],
        visualizer=None,
        **kwargs,
    )
    check(isinstance(conversation, RemoteConversation), "a RemoteConversation")
    return conversation, seen


def obs_text(event):
    return "".join(c.text for c in event.observation.content if hasattr(c, "text"))


def terminal_pairs(events):
    """(ActionEvent, ObservationEvent) of each terminal call, in order."""
    observations = {
        e.action_id: e for e in events if isinstance(e, ObservationEvent)
    }
    return [
        (e, observations.get(e.id))
        for e in events
        if isinstance(e, ActionEvent) and e.tool_name == "terminal"
    ]


def is_snapshot(e):
    return isinstance(e, ConversationStateUpdateEvent) and e.key == "full_state"


def stored_ids(events):
    """Ids of the events the server stores: full_state snapshots never are."""
    return [e.id for e in events if not is_snapshot(e)]


def full_states(seen):
    return [
        e.value["execution_status"]
        for e in seen
        if is_snapshot(e)
    ]


report = {}

step("conversation")
# 1. A full conversation, two messages and two runs, secrets, ask_agent.
# Kept on close (the factory's default deletes), to re-attach and for the
# Rust test to compare with the server's log.
conversation, seen = open_conversation(delete_on_close=False)
# The client is ready on the first frame, a moment before its callbacks see it.
wait_for("the first frame", lambda: full_states(seen))
check(full_states(seen) == ["idle"], f"first frame: {full_states(seen)}")
conversation.send_message("Say hello [script:py-echo]")
conversation.run()
state = conversation.state
check(
    state.execution_status == ConversationExecutionStatus.FINISHED,
    f"status after run: {state.execution_status}",
)
# run() returns on the terminal full_state, after every event of the run.
check(full_states(seen)[-1] == "finished", f"snapshots: {full_states(seen)}")
events = list(state.events)
pairs = terminal_pairs(events)
check(len(pairs) == 1, f"one terminal call, got {len(pairs)}")
action, observation = pairs[0]
check(isinstance(action.action, TerminalAction), f"decoded action: {type(action.action)}")
check(action.action.command == "echo hello-from-python", action.action.command)
check(observation is not None, "the terminal observation")
check(
    isinstance(observation.observation, TerminalObservation),
    f"decoded observation: {type(observation.observation)}",
)
check(observation.observation.exit_code == 0, f"exit code {observation.observation.exit_code}")
check("hello-from-python" in obs_text(observation), obs_text(observation))
check(
    any(isinstance(e, ActionEvent) and e.id == action.id for e in seen),
    "the callback saw the terminal action live",
)
messages = [e for e in events if isinstance(e, MessageEvent)]
check(messages[0].source == "user", f"first message from {messages[0].source}")
finish = [e for e in events if isinstance(e, ActionEvent) and e.tool_name == "finish"]
check(finish and finish[-1].action.message == "Hello printed.", "the finish action")
first_run = {
    "id": str(conversation.id),
    "event_ids": stored_ids(events),
    "action_id": action.id,
    "observation_text": obs_text(observation),
}

step("secrets, second run")
# Secrets reach the terminal's environment by name and come back masked.
conversation.update_secrets({"PY_TOKEN": "s3cr3t-py-value"})
conversation.send_message("Now use the token")
conversation.run()
check(
    conversation.state.execution_status == ConversationExecutionStatus.FINISHED,
    f"status after the second run: {conversation.state.execution_status}",
)
events = list(conversation.state.events)
pairs = terminal_pairs(events)
check(len(pairs) == 2, f"two terminal calls, got {len(pairs)}")
second_text = obs_text(pairs[1][1])
check("token=<secret-hidden>" in second_text, second_text)
check("s3cr3t" not in json.dumps([e.model_dump(mode="json") for e in events]), "secret leaked")

step("ask_agent")
answer = conversation.ask_agent("What have you done so far?")
check(answer == "The agent has been working on a file.", answer)
check(len(list(conversation.state.events)) == len(events), "ask_agent added events")

step("state fields")
# Every field of the remote state decodes from the server's snapshot.
state = conversation.state
check(state.id == conversation.id, f"state id {state.id}")
check(state.agent.llm.model == "openai/fake-model", f"agent model {state.agent.llm.model}")
check(
    [t.name for t in state.agent.tools] == ["terminal", "file_editor", "task_tracker"],
    f"agent tools {state.agent.tools}",
)
check(isinstance(state.confirmation_policy, NeverConfirm), f"policy {state.confirmation_policy}")
check(state.security_analyzer is None, f"analyzer {state.security_analyzer}")
check(state.activated_knowledge_skills == [], f"skills {state.activated_knowledge_skills}")
check(state.workspace["working_dir"] == WORK, f"workspace {state.workspace}")
check(state.persistence_dir, "persistence dir")
check(state.stats.get_combined_metrics().accumulated_token_usage.prompt_tokens > 0, "token usage")
check(
    conversation.conversation_stats.get_combined_metrics().accumulated_token_usage is not None,
    "conversation stats",
)
check(json.loads(state.model_dump_json())["execution_status"] == "finished", "state dump")
check(len(state.events) == len(events), "events len")
check(state.events[-1].id == events[-1].id, "events by index")

# The client reads settings from its cached state, which the socket's
# update frames refresh a moment after the POST returns.
conversation.set_security_analyzer(LLMSecurityAnalyzer())
wait_for(
    "the analyzer in the state",
    lambda: isinstance(conversation.state.security_analyzer, LLMSecurityAnalyzer),
)
conversation.set_security_analyzer(None)
wait_for("the analyzer removed", lambda: conversation.state.security_analyzer is None)
# Without a condenser the server refuses, as the Python server does.
try:
    conversation.condense()
    raise AssertionError("condense() without a condenser succeeded")
except httpx.HTTPStatusError as error:
    check(error.response.status_code == 409, f"condense: {error.response.status_code}")
    check("No condenser configured" in error.response.text, error.response.text)

title = conversation.generate_title()
check(title == "Fake Conversation Title", f"generated title {title}")
conversation.set_title("Python client test")
info = conversation.workspace.client.get(f"/api/conversations/{conversation.id}").json()
check(info["title"] == "Python client test", info.get("title"))
report["conversation"] = {
    **first_run,
    "all_event_ids": stored_ids(events),
    "second_observation": second_text,
    "answer": answer,
    "snapshots": full_states(seen),
}
conversation_id = conversation.id
conversation.close()

step("re-attach")
# Re-attach by id: the history comes back decoded.
again, _ = open_conversation(conversation_id=conversation_id, delete_on_close=False)
history = stored_ids(again.state.events)
before = report["conversation"]["all_event_ids"]
check(history[: len(before)] == before, "history after re-attaching")
# The settings changed since (analyzer, title) are stored state updates.
extra = {type(e).__name__ for e in list(again.state.events)[len(before) :]}
check(extra <= {"ConversationStateUpdateEvent"}, f"new in the history: {extra}")
report["conversation"]["all_event_ids"] = history
check(again.state.execution_status == ConversationExecutionStatus.FINISHED, "status")
check(
    isinstance(terminal_pairs(list(again.state.events))[0][0].action, TerminalAction),
    "decoded history",
)
again.close()

step("interrupt and pause")
# 2. Interrupt (cancels the running tool) and pause (between steps).
conversation, seen = open_conversation()
conversation.send_message("Sleep for a while [script:py-control]")
conversation.run(blocking=False)
wait_for(
    "the sleep action",
    lambda: any(isinstance(e, ActionEvent) and e.tool_name == "terminal" for e in seen),
)
conversation.interrupt()
wait_for("paused after the interrupt", lambda: "paused" in full_states(seen))
check(conversation.state.execution_status == ConversationExecutionStatus.PAUSED, "paused")
check(any(isinstance(e, InterruptEvent) for e in seen), "an InterruptEvent")
check(
    any(isinstance(e, AgentErrorEvent) and "interrupted" in e.error for e in seen),
    "the interrupted tool call is reported to the model",
)
mark = len(seen)
conversation.run(blocking=False)


def second_run_started():
    # Frames from before the second run (the interrupt's snapshots) come
    # before its `running` update on the socket.
    for i, e in enumerate(seen[mark:]):
        if (
            isinstance(e, ConversationStateUpdateEvent)
            and e.key == "execution_status"
            and e.value == "running"
        ):
            return mark + i + 1
    return None


# The next LLM reply is slow: the pause arrives during it and takes effect
# after that step.
mark = wait_for("the second run", second_run_started)
time.sleep(0.5)  # well inside the 2.5 s reply, which the pause lets complete
conversation.pause()
wait_for("the PauseEvent", lambda: any(isinstance(e, PauseEvent) for e in seen[mark:]))


def think_then_paused():
    # The reply in flight is still acted on, then the run stops.
    done = [
        i
        for i, e in enumerate(seen[mark:])
        if isinstance(e, ObservationEvent) and e.tool_name == "think"
    ]
    return done and "paused" in full_states(seen[mark + done[0]:])


wait_for("the think step, then paused", think_then_paused)
check(conversation.state.execution_status == ConversationExecutionStatus.PAUSED, "paused")
conversation.run()
check(conversation.state.execution_status == ConversationExecutionStatus.FINISHED, "finished")
report["control"] = {"id": str(conversation.id), "snapshots": full_states(seen)}
conversation.close()
gone = conversation.workspace.client.get(f"/api/conversations/{conversation.id}")
check(gone.status_code == 404, f"close() deletes by default: {gone.status_code}")

step("confirmation")
# 3. Confirmation mode: AlwaysConfirm, the client rejects the action.
# The model's reply streams: its deltas reach the token callback, never the
# event list.
tokens = []
conversation, seen = open_conversation(stream=True, token_callbacks=[tokens.append])
conversation.set_confirmation_policy(AlwaysConfirm())
wait_for(
    "the policy in the state",
    lambda: isinstance(conversation.state.confirmation_policy, AlwaysConfirm),
)
conversation.send_message("Try something risky [script:py-reject]")
conversation.run()
check(
    conversation.state.execution_status == ConversationExecutionStatus.WAITING_FOR_CONFIRMATION,
    f"status: {conversation.state.execution_status}",
)
pending = [e for e in seen if isinstance(e, ActionEvent) and e.tool_name == "terminal"]
check(len(pending) == 1 and pending[0].action.command == "echo should-not-run", "pending action")
streamed = "".join(c.delta.content or "" for t in tokens for c in t.choices)
check(streamed == "Let me try this.", f"streamed text {streamed!r}")
check(
    not any(type(e).__name__ == "StreamingDeltaEvent" for e in conversation.state.events),
    "a streaming delta in the event list",
)
conversation.reject_pending_actions("Not this time")
rejection = wait_for(
    "the rejection",
    lambda: [e for e in conversation.state.events if isinstance(e, UserRejectObservation)],
)[0]
check(rejection.action_id == pending[0].id, "rejection names the action")
check(rejection.rejection_reason == "Not this time", rejection.rejection_reason)
conversation.set_confirmation_policy(NeverConfirm())
wait_for(
    "NeverConfirm in the state",
    lambda: isinstance(conversation.state.confirmation_policy, NeverConfirm),
)
conversation.run()
check(conversation.state.execution_status == ConversationExecutionStatus.FINISHED, "finished")
events = list(conversation.state.events)
check(
    not any(isinstance(e, ObservationEvent) and e.action_id == pending[0].id for e in events),
    "the rejected action never ran",
)
report["rejection"] = {
    "id": str(conversation.id),
    "action_id": pending[0].id,
    "reason": rejection.rejection_reason,
}
conversation.close()

step("llm error")
# 4. The provider rejects the key: run() raises, the error event decodes.
conversation, seen = open_conversation(
    max_iteration_per_run=7, stuck_detection=False, tags={"suite": "clients"}
)
created = conversation.workspace.client.get(f"/api/conversations/{conversation.id}").json()
check(created["max_iterations"] == 7, f"max_iterations {created['max_iterations']}")
check(created["stuck_detection"] is False, f"stuck_detection {created['stuck_detection']}")
check(created["tags"] == {"suite": "clients"}, f"tags {created['tags']}")
conversation.send_message("Fail please [script:py-auth]")
try:
    conversation.run()
    raise AssertionError("run() returned after an LLM authentication error")
except ConversationRunError as error:
    run_error = str(error)
check(
    conversation.state.execution_status == ConversationExecutionStatus.ERROR,
    f"status: {conversation.state.execution_status}",
)
# run() raises on the `error` status update, which (as in the Python server)
# comes before the error event itself.
errors = wait_for(
    "the ConversationErrorEvent",
    lambda: [e for e in seen if isinstance(e, ConversationErrorEvent)],
)
check(len(errors) == 1 and errors[0].code == "LLMAuthenticationError", f"errors: {errors}")
report["llm_error"] = {"id": str(conversation.id), "code": errors[0].code, "run_error": run_error}
conversation.close()

step("workspace")
# 5. The workspace API: commands and files.
workspace = new_workspace()
result = workspace.execute_command("echo from-python-workspace", cwd=WORK)
check(result.exit_code == 0, f"command: {result}")
check(result.stdout.strip() == "from-python-workspace", result.stdout)
upload = workspace.file_upload(b"uploaded by the python client\n", f"{WORK}/py-upload.txt")
check(upload.success, f"upload: {upload}")
local = os.path.join(WORK, f"download-{uuid.uuid4().hex}.txt")
download = workspace.file_download(f"{WORK}/py-upload.txt", local)
check(download.success, f"download: {download}")
with open(local, encoding="utf-8") as f:
    downloaded = f.read()
check(downloaded == "uploaded by the python client\n", downloaded)
report["workspace"] = {"stdout": result.stdout, "downloaded": downloaded}

step("wrong key")
# 6. A wrong key: 401 on create; the socket's first-message auth closes with
# 4001, which the client treats as fatal (no reconnect loop).
try:
    Conversation(agent=new_agent(), workspace=new_workspace("not-the-key"), visualizer=None)
    raise AssertionError("a conversation was created with a wrong key")
except httpx.HTTPStatusError as error:
    rest_status = error.response.status_code
check(rest_status == 401, f"status {rest_status}")
socket = WebSocketCallbackClient(
    host=HOST, conversation_id=str(conversation_id), callback=lambda e: None, api_key="nope"
)
socket.start()
check(not socket.wait_until_ready(timeout=WAIT_S), "the socket became ready with a wrong key")
check(socket._stop.is_set(), "the client gave up at once: the close code was fatal")
thread = socket._thread
thread.join(timeout=WAIT_S)
check(not thread.is_alive(), "the socket thread ended: no reconnect loop")
socket.stop()
report["bad_key"] = {"rest_status": rest_status, "socket_gave_up": True}

print(json.dumps(report))
sys.stdout.flush()
