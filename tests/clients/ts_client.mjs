// Drives the real npm @openhands/typescript-client (1.39) against a running
// agent-server through full conversations. Started by tests/real_clients.rs
// with the server and the fake LLM in its environment:
//
//   AGENT_SERVER_URL  http://127.0.0.1:PORT
//   AGENT_SERVER_KEY  the session key
//   WORK_DIR          the agents' working directory
//   FAKE_LLM_URL      the fake provider's base_url (…/v1)
//
// The fake LLM's scripts are chosen by `[script:NAME]` markers in the first
// message; the Rust test registers them. Every check throws on failure (exit
// 1); on success the script prints one JSON report on its last stdout line,
// which the Rust test compares with the server's own view.

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

// The client loads `ws` with `require` inside an ES module: without a global
// `require` its WebSocket silently never connects under Node.
globalThis.require = createRequire(import.meta.url);

const {
  Agent,
  AlwaysConfirm,
  Conversation,
  ConversationManager,
  HttpError,
  Workspace,
} = await import('@openhands/typescript-client');
const { default: WebSocket } = await import('ws');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const HOST = env('AGENT_SERVER_URL');
const KEY = env('AGENT_SERVER_KEY');
const WORK = env('WORK_DIR');
const LLM_URL = env('FAKE_LLM_URL');

// Every wait is bounded: the whole script must end well within a minute.
const WAIT_MS = 20000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const label = (e) =>
  e.kind === 'ConversationStateUpdateEvent'
    ? `${e.kind}[${e.key}=${e.key === 'full_state' ? e.value?.execution_status : JSON.stringify(e.value)}]`
    : e.kind;

// Waits for `predicate`; a timeout names what was awaited and what the
// socket delivered so far (`seen`).
async function waitFor(what, predicate, seen = []) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; seen: ${seen.map(label).join(', ')}`);
    }
    await sleep(25);
  }
}

const isSnapshot = (e) => e.kind === 'ConversationStateUpdateEvent' && e.key === 'full_state';
const isFullState = (e, status) => isSnapshot(e) && e.value?.execution_status === status;

const textOf = (observation) =>
  (observation?.content ?? [])
    .filter((c) => c.type === 'text')
    .map((c) => c.text)
    .join('');

function newAgent() {
  return new Agent({
    llm: { model: 'openai/fake-model', base_url: LLM_URL, api_key: 'sk-fake', num_retries: 0 },
    // The tools the project's frontends ask for (the browser is off in tests).
    tools: [
      { name: 'terminal' },
      { name: 'file_editor' },
      { name: 'task_tracker' },
      { name: 'glob' },
      { name: 'grep' },
    ],
  });
}

function newWorkspace(apiKey = KEY) {
  return new Workspace({ host: HOST, workingDir: WORK, apiKey });
}

// A conversation whose callback records every event it sees live.
function liveConversation(options = {}) {
  const seen = [];
  const errors = [];
  const conversation = new Conversation(newAgent(), newWorkspace(), {
    ...options,
    callback: (event) => seen.push(event),
    onError: (error) => errors.push(String(error)),
  });
  return { conversation, seen, errors };
}

const report = {};

// 1. A full conversation: the agent runs `echo` in the terminal, then finishes.
{
  const { conversation, seen, errors } = liveConversation();
  await conversation.start({ initialMessage: 'Say hello [script:ts-echo]' });
  await conversation.startWebSocketClient();
  // The first frame of every socket is a full_state snapshot.
  await waitFor('the first full_state frame', () => seen.some(isSnapshot), seen);
  await conversation.run();
  await waitFor('the finished full_state frame', () => seen.some((e) => isFullState(e, 'finished')), seen);
  assert.deepEqual(errors, []);

  const action = seen.find((e) => e.kind === 'ActionEvent' && e.tool_name === 'terminal');
  assert.ok(action, 'an ActionEvent for terminal');
  assert.equal(action.action.command, 'echo hello-from-ts');
  assert.equal(action.action.kind, 'TerminalAction');
  const observation = seen.find(
    (e) => e.kind === 'ObservationEvent' && e.action_id === action.id,
  );
  assert.ok(observation, 'the terminal ObservationEvent');
  assert.equal(observation.tool_call_id, action.tool_call_id);
  assert.match(textOf(observation.observation), /hello-from-ts/);
  const finish = seen.find((e) => e.kind === 'ActionEvent' && e.tool_name === 'finish');
  assert.equal(finish?.action?.message, 'All done.');
  assert.ok(
    seen.some(
      (e) => e.kind === 'ObservationEvent' && e.tool_name === 'finish' && e.action_id === finish.id,
    ),
    'the finish observation',
  );

  // The history over REST holds every persisted event seen live, by id, and
  // the initial message stored before the socket opened.
  // getEvents() merges the server's list with the live cache, whose
  // full_state snapshots are never stored.
  const history = (await conversation.state.events.getEvents()).filter((e) => !isSnapshot(e));
  const userMessage = history.find((e) => e.kind === 'MessageEvent' && e.source === 'user');
  assert.match(userMessage.llm_message.content[0].text, /Say hello/);
  const historyIds = new Set(history.map((e) => e.id));
  for (const e of seen.filter((e) => !isSnapshot(e))) {
    assert.ok(historyIds.has(e.id), `event ${e.kind} ${e.id} seen live is in the history`);
  }
  const found = await conversation.state.events.search({ kind: 'ActionEvent' });
  assert.deepEqual(
    found.items.map((e) => e.id),
    history.filter((e) => e.kind === 'ActionEvent').map((e) => e.id),
  );
  const count = await conversation.state.events.count({ kind: 'ObservationEvent' });
  assert.equal(count, 3); // terminal, grep, finish
  const byId = await conversation.state.events.getEventById(action.id);
  assert.equal(byId.action.command, 'echo hello-from-ts');

  assert.equal(await conversation.state.getAgentStatus(), 'finished');
  const policy = await conversation.state.getConfirmationPolicy();
  assert.equal(policy.kind, 'NeverConfirm');
  const agent = await conversation.state.getAgent();
  assert.equal(agent.llm.model, 'openai/fake-model');
  assert.deepEqual(
    agent.tools.map((t) => t.name),
    ['terminal', 'file_editor', 'task_tracker', 'glob', 'grep'],
  );
  const stats = await conversation.conversationStats();
  assert.ok(stats.usage_to_metrics, 'stats carry usage_to_metrics');
  assert.equal(await conversation.getAgentFinalResponse(), 'All done.');
  await conversation.stopWebSocketClient();

  // Reconnect by id: the history and the status come back, and a new socket
  // opens with a fresh snapshot.
  const again = liveConversation({ conversationId: conversation.id });
  await again.conversation.start();
  const replayed = await again.conversation.state.events.getEvents();
  assert.deepEqual(
    replayed.map((e) => e.id),
    history.map((e) => e.id),
  );
  assert.equal(await again.conversation.state.getAgentStatus(), 'finished');
  await again.conversation.startWebSocketClient();
  await waitFor('the reconnected snapshot', () => again.seen.some((e) => isFullState(e, 'finished')), again.seen);
  await again.conversation.stopWebSocketClient();

  // The conversation manager lists, counts and fetches it.
  const manager = new ConversationManager({ host: HOST, apiKey: KEY });
  const listed = await manager.getAllConversations();
  assert.ok(listed.some((c) => c.id === conversation.id), 'the manager lists the conversation');
  const finished = await manager.searchConversations({ status: 'finished', limit: 100 });
  assert.ok(finished.items.some((c) => c.id === conversation.id), 'status filter finds it');
  assert.ok((await manager.countConversations()) >= 1);
  const batch = await manager.getConversations([conversation.id]);
  assert.equal(batch[0].id, conversation.id);
  const one = await manager.getConversation(conversation.id);
  assert.equal(one.execution_status, 'finished');
  const info = await manager.server.getServerInfo();
  assert.ok(info.version, 'server info has a version');
  const tools = await manager.tools.listTools();
  assert.ok(tools.includes('terminal'), 'the tool list names terminal');

  // A second message in the same conversation, with a secret the terminal
  // gets by name and the server masks; then a question, a title, a pause.
  await conversation.updateSecrets({ TS_TOKEN: 's3cr3t-ts-value' });
  const snapshots = seen.filter(isSnapshot).length;
  await conversation.startWebSocketClient();
  await waitFor(
    "the new socket's snapshot",
    () => seen.filter(isSnapshot).length > snapshots,
    seen,
  );
  const mark = seen.length;
  await conversation.sendMessage('Now use the token');
  await conversation.run();
  await waitFor(
    'the second finished full_state frame',
    () => seen.slice(mark).some((e) => isFullState(e, 'finished')),
    seen,
  );
  const second = seen
    .slice(mark)
    .find((e) => e.kind === 'ObservationEvent' && e.tool_name === 'terminal');
  assert.ok(second, 'the second terminal observation');
  assert.match(textOf(second.observation), /token=<secret-hidden>/);
  assert.ok(!JSON.stringify(seen).includes('s3cr3t'), 'the secret reached the socket');
  assert.equal(await conversation.getAgentFinalResponse(), 'Token used.');
  const answer = await conversation.askAgent('What have you done so far?');
  assert.equal(answer, 'The agent has been working on a file.');
  await conversation.setTitle('TS client test');
  assert.equal((await manager.getConversation(conversation.id)).title, 'TS client test');
  // Pausing a finished conversation changes nothing, as in the Python server
  // (asked over REST: the client's cached state can lag behind the server).
  await conversation.pause();
  assert.equal((await manager.getConversation(conversation.id)).execution_status, 'finished');
  await conversation.stopWebSocketClient();
  const finalHistory = (await conversation.state.events.getEvents()).filter((e) => !isSnapshot(e));
  assert.ok(!finalHistory.some((e) => e.kind === 'PauseEvent'), 'a PauseEvent after finishing');

  report.conversation = {
    id: conversation.id,
    live_kinds: seen.map((e) => (e.key ? `${e.kind}[${e.key}]` : e.kind)),
    history_ids: finalHistory.map((e) => e.id),
    action_id: action.id,
    observation_text: textOf(observation.observation),
    second_observation_text: textOf(second.observation),
    answer,
  };
  await conversation.close();
  await again.conversation.close();
}

// 2. Files through the workspace API (multipart upload, download) and bash.
{
  const workspace = newWorkspace();
  const upload = await workspace.uploadText('uploaded by the ts client\n', `${WORK}/ts-upload.txt`);
  assert.equal(upload.success, true);
  const text = await workspace.downloadAsText(`${WORK}/ts-upload.txt`);
  assert.equal(text, 'uploaded by the ts client\n');
  const command = await workspace.executeCommand('cat ts-upload.txt', WORK);
  assert.equal(command.exit_code, 0);
  assert.equal(command.stdout.trim(), 'uploaded by the ts client');
  report.files = { downloaded: text, command_stdout: command.stdout };
  workspace.close();
}

// 3. Confirmation: AlwaysConfirm stops the run before the action; the client
// accepts it and the run finishes.
{
  const { conversation, seen, errors } = liveConversation();
  await conversation.start({ initialMessage: 'Run it after asking [script:ts-confirm]' });
  await conversation.setConfirmationPolicy(new AlwaysConfirm());
  assert.equal((await conversation.state.refresh()).confirmation_policy.kind, 'AlwaysConfirm');
  await conversation.startWebSocketClient();
  // Events are not replayed on the socket: it must be open before the run.
  await waitFor('the first full_state frame', () => seen.some(isSnapshot), seen);
  await conversation.run();
  await waitFor('waiting_for_confirmation', () =>
    seen.some((e) => isFullState(e, 'waiting_for_confirmation')),
    seen,
  );
  const pending = seen.find((e) => e.kind === 'ActionEvent' && e.tool_name === 'terminal');
  assert.equal(pending.action.command, 'echo confirmed-by-ts');
  assert.ok(
    !seen.some((e) => e.kind === 'ObservationEvent' && e.action_id === pending.id),
    'no observation before the accept',
  );
  await conversation.sendConfirmationResponse(true);
  // An accept resumes the run when the server is idle; a second run() is the
  // documented way to continue and answers 409 when the run already resumed.
  try {
    await conversation.run();
  } catch (error) {
    if (!(error instanceof HttpError) || error.status !== 409) throw error;
  }
  await waitFor('the finished full_state frame after the accept', () => seen.some((e) => isFullState(e, 'finished')), seen);
  const observation = seen.find(
    (e) => e.kind === 'ObservationEvent' && e.action_id === pending.id,
  );
  assert.match(textOf(observation.observation), /confirmed-by-ts/);
  assert.deepEqual(errors, []);
  report.confirmation = {
    id: conversation.id,
    action_id: pending.id,
    observation_text: textOf(observation.observation),
  };
  await conversation.close();
}

// 4. The manager renames and deletes a conversation.
{
  const conversation = new Conversation(newAgent(), newWorkspace());
  await conversation.start();
  const manager = new ConversationManager({ host: HOST, apiKey: KEY });
  await manager.updateConversation(conversation.id, { title: 'Renamed by the manager' });
  assert.equal((await manager.getConversation(conversation.id)).title, 'Renamed by the manager');
  await manager.deleteConversation(conversation.id);
  let status;
  try {
    await manager.getConversation(conversation.id);
  } catch (error) {
    assert.ok(error instanceof HttpError, `an HttpError, got ${error}`);
    status = error.status;
  }
  assert.equal(status, 404);
  report.deleted = { id: conversation.id, status };
}

// 5. A wrong key: a clean 401 over REST, close code 4001 on the socket.
{
  const bad = new Conversation(newAgent(), newWorkspace('not-the-key'));
  let status;
  try {
    await bad.start({ initialMessage: 'never stored' });
  } catch (error) {
    assert.ok(error instanceof HttpError, `an HttpError, got ${error}`);
    status = error.status;
  }
  assert.equal(status, 401);
  const ws = new URL(HOST);
  const url = `ws://${ws.host}/sockets/events/${report.conversation.id}?session_api_key=not-the-key`;
  const close = await new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error('no close frame')), WAIT_MS);
    socket.on('message', () => reject(new Error('a frame before authentication')));
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
    socket.on('error', reject);
  });
  assert.equal(close.code, 4001);
  report.bad_key = { rest_status: status, close_code: close.code, close_reason: close.reason };
}

console.log(JSON.stringify(report));
