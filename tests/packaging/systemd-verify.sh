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
# Extra unit files (the ones the NixOS module renders, for instance) are
# verified together, under their own names, and each service among them is
# held to the same threshold.
set -euo pipefail

# In tenths (systemd-analyze takes an integer): 19 is the 1.9 recorded in
# packaging/OPERATIONS.md, so a weaker unit cannot slip in unnoticed.
THRESHOLD=19

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
echo "systemd-verify: systemd/ units verify cleanly; ${score#Overall exposure level for agent-server.service: }"

[ $# -gt 0 ] || exit 0
names=()
for extra in "$@"; do
    names+=("$(basename "$extra")")
    cp "$extra" "$root/etc/systemd/system/"
done
verify "${names[@]}"
for name in "${names[@]}"; do
    case "$name" in *.service) ;; *) continue ;; esac
    out="$(systemd-analyze security --offline=yes --root="$root" --no-pager \
        --threshold="$THRESHOLD" "$name" 2>&1)" \
        || fail "$name is above exposure $THRESHOLD/10:"$'\n'"$(grep '✗\|Overall' <<<"$out")"
    score="$(grep -o "Overall exposure level for $name: .*" <<<"$out")"
    echo "systemd-verify: $name verifies cleanly; ${score#Overall exposure level for "$name": }"
done
echo "systemd-verify: ${names[*]} verify cleanly"
