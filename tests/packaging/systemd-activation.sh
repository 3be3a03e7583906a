#!/usr/bin/env bash
# Starts the server the way systemd starts agent-server.service from
# agent-server.socket, without systemd as PID 1: systemd-socket-activate owns
# the listening socket and execs the server on the first connection, handing
# it over as fd 3 (LISTEN_FDS=1, LISTEN_PID = the server's pid), with
# NOTIFY_SOCKET, WATCHDOG_USEC and CREDENTIALS_DIRECTORY as the unit sets them.
# Checks: the key is read from the credential, READY=1 with the address,
# watchdog pings, /health through the inherited socket, STOPPING=1 and exit 0
# on SIGTERM.
#
#   tests/packaging/systemd-activation.sh [BINARY]
set -euo pipefail

binary="$(realpath "${1:-target/x86_64-unknown-linux-musl/release/agent-server}")"
fail() { echo "systemd-activation: FAIL: $*" >&2; exit 1; }
[ -x "$binary" ] || fail "no binary at $binary"
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate is not installed"

work="$(mktemp -d)"
server_pid=""
listener_pid=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    [ -z "$listener_pid" ] || kill "$listener_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# A credentials directory as systemd prepares it: one read-only file per credential.
mkdir -m 0700 "$work/credentials"
printf 'activation-test-key\n' > "$work/credentials/secret-key"
chmod 0400 "$work/credentials/secret-key"
mkdir "$work/state"

common_env=(
    "HOME=$work/state"
    "OPENHANDS_AGENT_SERVER_CONFIG_PATH=$work/missing-config.json"
    "OH_CONVERSATIONS_PATH=$work/state/conversations"
    "OH_WORKSPACE_PATH=$work/state/workspace"
    "OH_BASH_EVENTS_DIR=$work/state/bash_events"
    "CREDENTIALS_DIRECTORY=$work/credentials"
)

# The key comes from the credential (shown redacted), and only from there.
config="$(env -i "${common_env[@]}" "$binary" --print-config)"
grep -q '"secret_key": "\*\*\*\*\*\*\*\*\*\*"' <<<"$config" \
    || fail "secret_key not read from \$CREDENTIALS_DIRECTORY: $config"
grep -q 'activation-test-key' <<<"$config" && fail "--print-config shows the key"
config="$(env -i "${common_env[@]/CREDENTIALS_DIRECTORY=*/CREDENTIALS_DIRECTORY=$work/state}" "$binary" --print-config)"
grep -q '"secret_key": null' <<<"$config" || fail "secret_key set without a credential: $config"

# The notification socket: records every datagram, one line per field.
python3 - "$work/notify.sock" "$work/notify.log" <<'EOF' &
import socket, sys, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
sock.settimeout(1.0)
deadline = time.monotonic() + 60
with open(sys.argv[2], "a", buffering=1) as log:
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            continue
        log.write(data.decode() + "\n")
        if b"STOPPING=1" in data:
            break
EOF
listener_pid=$!
for _ in $(seq 100); do [ -S "$work/notify.sock" ] && break; sleep 0.05; done
[ -S "$work/notify.sock" ] || fail "the notification listener did not start"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
setenv=()
for var in "${common_env[@]}" "NOTIFY_SOCKET=$work/notify.sock" "WATCHDOG_USEC=200000"; do
    setenv+=(-E "$var")
done
env -i PATH=/usr/bin:/bin systemd-socket-activate -l "127.0.0.1:$port" "${setenv[@]}" \
    "$binary" --port 1 >"$work/stdout" 2>"$work/stderr" &
server_pid=$!  # systemd-socket-activate execs the server in its own process
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && break
    sleep 0.05
done

# The first connection starts the server, which answers it on the inherited socket.
health="$(curl -sS --max-time 10 "http://127.0.0.1:$port/health")" \
    || fail "no answer on /health; stderr: $(cat "$work/stderr")"
[ "$health" = '{"status":"ok"}' ] || fail "/health answered $health"

wait_for() {
    for _ in $(seq 200); do
        grep -qx "$1" "$work/notify.log" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "no $1 from the server; got: $(cat "$work/notify.log" 2>/dev/null)"
}
wait_for "READY=1"
grep -qx "STATUS=listening on http://127.0.0.1:$port" "$work/notify.log" \
    || fail "READY=1 without the inherited address: $(cat "$work/notify.log")"
wait_for "WATCHDOG=1"
grep -q "passed by systemd" "$work/stderr" || fail "the server did not use fd 3: $(cat "$work/stderr")"

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=""
[ "$status" -eq 0 ] || fail "exit status $status after SIGTERM; stderr: $(cat "$work/stderr")"
wait_for "STOPPING=1"
echo "systemd-activation: ok (READY=1, WATCHDOG=1, /health on the inherited socket, key from the credential, STOPPING=1, exit 0)"
