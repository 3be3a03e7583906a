#!/usr/bin/env bash
# Static checks of the systemd units, without systemd as PID 1:
#   * `systemd-analyze verify` must print nothing at all: it exits 0 even for
#     unknown keys or unparsable values, so any output is a failure;
#   * `systemd-analyze security --offline=yes` must stay at or below THRESHOLD.
# Both run against a staged root holding the binary at the unit's ExecStart
# path, the units (and the behind-nginx socket drop-in) and systemd's own
# unit directory.
#
#   tests/packaging/systemd-verify.sh [BINARY] [EXTRA_UNIT_FILE...]
#
# Extra unit files (the one the NixOS module renders, for instance) are
# verified the same way, each under its own name.
set -euo pipefail

# In tenths (systemd-analyze takes an integer): 23 is the 2.3 recorded in
# packaging/OPERATIONS.md, so a weaker unit cannot slip in unnoticed.
THRESHOLD=23

cd "$(dirname "$0")/../.."
binary="$(realpath "${1:-target/x86_64-unknown-linux-musl/release/agent-server}")"
shift || true
fail() { echo "systemd-verify: FAIL: $*" >&2; exit 1; }
[ -x "$binary" ] || fail "no binary at $binary"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/usr/lib" "$root/etc/systemd/system/agent-server.socket.d"
cp "$binary" "$root/usr/local/bin/agent-server"
cp -a /usr/lib/systemd "$root/usr/lib/"
cp systemd/agent-server.service systemd/agent-server.socket "$root/etc/systemd/system/"

# Runs `systemd-analyze verify` on units in $root; any output fails.
verify() {
    local out
    out="$(systemd-analyze verify --man=no --root="$root" "$@" 2>&1)" || fail "verify $* exited non-zero: $out"
    [ -z "$out" ] || fail "verify $* printed:"$'\n'"$out"
}

verify agent-server.service agent-server.socket
cp packaging/nginx/agent-server.socket.d/behind-nginx.conf "$root/etc/systemd/system/agent-server.socket.d/"
verify agent-server.socket
rm "$root/etc/systemd/system/agent-server.socket.d/behind-nginx.conf"

report="$(systemd-analyze security --offline=yes --root="$root" --no-pager \
    --threshold="$THRESHOLD" agent-server.service 2>&1)" \
    || fail "agent-server.service is above exposure $THRESHOLD/10:"$'\n'"$(grep '✗\|Overall' <<<"$report")"
score="$(grep -o 'Overall exposure level for agent-server.service: .*' <<<"$report")"
echo "systemd-verify: units verify cleanly; ${score#Overall exposure level for agent-server.service: }"

for extra in "$@"; do
    name="$(basename "$extra")"
    cp "$extra" "$root/etc/systemd/system/$name"
    verify "$name"
    out="$(systemd-analyze security --offline=yes --root="$root" --no-pager \
        --threshold="$THRESHOLD" "$name" 2>&1)" \
        || fail "$name is above exposure $THRESHOLD/10:"$'\n'"$(grep '✗\|Overall' <<<"$out")"
    echo "systemd-verify: $name verifies cleanly; $(grep -o 'Overall exposure level.*' <<<"$out")"
done
