#!/usr/bin/env bash
# Benchmarks of the conversation core (not a test), against the Python
# server 1.58.2 figures of ../shared/reference/baseline.md:
#
#   1. GET /api/conversations/search over 40 conversations (wrk, 4 connections)
#   2. WebSocket replay of a 10,000-event conversation (events/s)
#   3. start-up to ready with 1,000 stored conversations x 100 events, and RSS
#   4. event search on a 100,000-event conversation (page of 100)
#   5. disk blocks per event
#
#   bench/conversations.sh [release dir]   default: target/release (built if missing)
#
# Data sets are generated with examples/gen_conversations.rs. Numbers depend
# on the machine and its load: compare runs made side by side.
set -euo pipefail

cd "$(dirname "$0")/.."

DIR="${1:-target/release}"
WRK_SECONDS="${WRK_SECONDS:-10}"
RUNS="${RUNS:-5}"
KEY=bench-key
PY_SEARCH_RPS=56

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
if ! command -v wrk >/dev/null 2>&1; then
    as_root apt-get update -qq >/dev/null 2>&1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1
fi
if [ ! -x "$DIR/agent-server" ] || [ ! -x "$DIR/examples/gen_conversations" ] || [ ! -x "$DIR/examples/ws_replay" ]; then
    cargo build --quiet --release --bin agent-server --example gen_conversations --example ws_replay
fi
SERVER="$(realpath "$DIR/agent-server")"
GEN="$(realpath "$DIR/examples/gen_conversations")"
REPLAY="$(realpath "$DIR/examples/ws_replay")"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server DATA_DIR: starts the server on a fresh port; sets $port, $server_pid, $ready_ms.
start_server() {
    port="$(free_port)"
    local t0
    t0="$(date +%s%N)"
    (cd "$work" && exec env -i PATH="$PATH" OH_SESSION_API_KEYS_0="$KEY" OH_SECRET_KEY=bench \
        OH_CONVERSATIONS_PATH="$1" "$SERVER" --host 127.0.0.1 --port "$port" >/dev/null 2>"$work/server.log") &
    server_pid=$!
    for _ in $(seq 4000); do
        if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then break; fi
        sleep 0.002
    done
    ready_ms="$(( ($(date +%s%N) - t0) / 1000000 ))"
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$server_pid/status"; }

first_id() {
    curl -fsS -H "X-Session-API-Key: $KEY" "http://127.0.0.1:$port/api/conversations/search?limit=1" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])'
}

median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# 1. search over 40 conversations
"$GEN" "$work/d40" "$work/ws" 40 20 bench
start_server "$work/d40"
search_bytes="$(curl -fsS -H "X-Session-API-Key: $KEY" "http://127.0.0.1:$port/api/conversations/search" | wc -c)"
search_out="$(wrk -t2 -c4 -d"${WRK_SECONDS}s" --latency -H "X-Session-API-Key: $KEY" "http://127.0.0.1:$port/api/conversations/search")"
search_rps="$(awk '/Requests\/sec/ {print $2}' <<<"$search_out")"
search_p50="$(awk '$1=="50%" {print $2}' <<<"$search_out")"
search_p99="$(awk '$1=="99%" {print $2}' <<<"$search_out")"
stop_server

# 2. WebSocket replay of 10,000 events
"$GEN" "$work/d10k" "$work/ws" 1 10000 bench
start_server "$work/d10k"
id="$(first_id)"
rates=()
for _ in $(seq "$RUNS"); do
    rates+=("$("$REPLAY" "127.0.0.1:$port" "$id" "$KEY" 10001 | python3 -c 'import json,sys; print(json.load(sys.stdin)["events_per_second"])')")
done
replay_rate="$(median "${rates[@]}")"
stop_server

# 3. start-up with 1,000 x 100 events, and 5. disk blocks per event
"$GEN" "$work/d1000" "$work/ws" 1000 100 bench
sync
starts=()
rss=""
for _ in $(seq "$RUNS"); do
    start_server "$work/d1000"
    starts+=("$ready_ms")
    sleep 0.5
    rss="$(rss_kb)"
    stop_server
done
startup_ms="$(median "${starts[@]}")"
blocks_per_event="$(python3 - "$work/d1000" <<'PY'
import os, sys
blocks = events = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(root, f)
        blocks += os.stat(p).st_blocks * 512 / 4096
        if f == "events.jsonl":
            with open(p, "rb") as fh:
                events += sum(1 for _ in fh)
print(f"{blocks / events:.3f}")
PY
)"

# 4. event search on 100,000 events
"$GEN" "$work/d100k" "$work/ws" 1 100000 bench
start_server "$work/d100k"
id="$(first_id)"
base="http://127.0.0.1:$port/api/conversations/$id/events"
load_ms="$(curl -fsS -o /dev/null -w '%{time_total}' -H "X-Session-API-Key: $KEY" "$base/count" | python3 -c 'import sys; print(round(float(sys.stdin.read())*1000,1))')"
mid="$(curl -fsS -H "X-Session-API-Key: $KEY" "$base/search?limit=100&sort_order=TIMESTAMP_DESC" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][50]["id"])')"
lat() {
    wrk -t1 -c1 -d5s --latency -H "X-Session-API-Key: $KEY" "$1" | awk '$1=="50%" {print $2}'
}
search_first="$(lat "$base/search?limit=100")"
search_page="$(lat "$base/search?limit=100&page_id=$mid")"
search_desc="$(lat "$base/search?limit=100&sort_order=TIMESTAMP_DESC")"
search_kind="$(lat "$base/search?limit=100&kind=ActionEvent&sort_order=TIMESTAMP_DESC")"
count_kind="$(lat "$base/count?kind=ObservationEvent")"
stop_server

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):,.0f}x')" "$1" "$2"; }

cat <<TABLE
| metric | agent-server | Python 1.58.2 | target |
|---|---|---|---|
| GET /api/conversations/search, 40 conversations, wrk -t2 -c4 | ${search_rps} req/s (p50 ${search_p50}, p99 ${search_p99}; ${search_bytes} B/response) | ${PY_SEARCH_RPS} req/s ($(ratio "$search_rps" "$PY_SEARCH_RPS")) | >= 30x |
| WebSocket replay, 10,000 events (median of ${RUNS}) | ${replay_rate} events/s | ~2,500 events/s | >= 100,000 events/s |
| start-up to ready, 1,000 conversations x 100 events (median of ${RUNS}) | ${startup_ms} ms, RSS ${rss} kB | 18.2 s (loads everything) | < 100 ms, < 30 MB |
| first use of a 100,000-event conversation (index build) | ${load_ms} ms | | |
| event search, 100,000 events, page of 100 (p50) | first ${search_first}, middle ${search_page}, newest ${search_desc}, kind filter ${search_kind}; count by kind ${count_kind} | full scans | < 5 ms |
| disk blocks per event (4 KiB) | ${blocks_per_event} | 1.05 (4.3 KiB per event file) | <= 1 |
TABLE
