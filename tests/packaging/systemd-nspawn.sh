#!/usr/bin/env bash
# The units under a real systemd: a Debian container booted with
# systemd-nspawn (this machine's PID 1 is not systemd), with the units of
# systemd/ and the static binary bound in. Checks:
#   * socket activation: the first request on the socket starts the service,
#     which answers it; Type=notify reaches "active" with the server's status;
#   * DynamicUser, StateDirectory and the secret key credential;
#   * journald gets the server's records with PRIORITY and TARGET fields;
#   * SIGTERM from `systemctl stop` ends in a clean exit;
#   * the tools under the unit's hardening: the terminal and bash service
#     tests (bash in a PTY, process groups, files in the state directory) run
#     as a unit with the same settings, and Chromium renders a page there
#     with its own sandbox.
#
#   tests/packaging/systemd-nspawn.sh [BINARY]
#
# Needs root, systemd-container and debootstrap. The container's root file
# system (Debian bookworm with systemd, Chromium and less) is built once and
# kept in /var/tmp/agent-server-ci/nspawn-rootfs; the container runs on a
# volatile overlay, so it never changes.
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() { echo "systemd-nspawn: FAIL: $*" >&2; exit 1; }
binary="$(realpath "${1:-target/x86_64-unknown-linux-musl/release/agent-server}")"
[ -x "$binary" ] || fail "no binary at $binary"
[ "$(id -u)" -eq 0 ] || fail "needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || fail "systemd-nspawn is not installed (apt-get install systemd-container)"

ROOTFS="${AGENT_SERVER_NSPAWN_ROOTFS:-/var/tmp/agent-server-ci/nspawn-rootfs}"
MACHINE="agent-server-ci-$$"

if [ ! -x "$ROOTFS/usr/lib/systemd/systemd" ] || [ ! -x "$ROOTFS/usr/lib/chromium/chromium" ]; then
    echo "systemd-nspawn: building the container root file system in $ROOTFS"
    rm -rf "$ROOTFS.new"
    mkdir -p "$(dirname "$ROOTFS")"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,less,procps \
        bookworm "$ROOTFS.new" http://deb.debian.org/debian >"$ROOTFS.log" 2>&1 \
        || fail "debootstrap: $(tail -5 "$ROOTFS.log")"
    chroot "$ROOTFS.new" /usr/bin/env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends chromium >>"$ROOTFS.log" 2>&1 \
        || fail "installing Chromium: $(tail -5 "$ROOTFS.log")"
    chroot "$ROOTFS.new" apt-get clean
    # Chromium's DevTools connection needs localhost to resolve.
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOTFS.new/etc/hosts"
    echo agent-server-ci >"$ROOTFS.new/etc/hostname"
    mv "$ROOTFS.new" "$ROOTFS"
fi

# The tool tests, as compiled by the test stage (dev profile, glibc: the
# container is the same Debian release as this machine).
executables="$(cargo test --quiet --locked --no-run --message-format=json --lib --test bash_service 2>/dev/null \
    | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["kind"][0], m["executable"])')"
lib_tests="$(awk '$1 == "lib" {print $2}' <<<"$executables")"
bash_tests="$(awk '$1 == "test" {print $2}' <<<"$executables")"
[ -x "$lib_tests" ] && [ -x "$bash_tests" ] || fail "test executables not found: $executables"

work="$(mktemp -d)"
nspawn_pid=""
cleanup() {
    if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
        # SIGTERM asks the container to shut down cleanly.
        kill -TERM "$nspawn_pid" 2>/dev/null || true
        for _ in $(seq 150); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$nspawn_pid" 2>/dev/null || true
        wait "$nspawn_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$work/socket.d" "$work/tools" "$work/etc-agent-server"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$port" >"$work/socket.d/port.conf"
(umask 077; printf 'nspawn-test-key\n' >"$work/etc-agent-server/secret-key")
cp "$lib_tests" "$work/tools/lib-tests"
cp "$bash_tests" "$work/tools/bash-service-tests"
cat >"$work/tools/run" <<'EOF'
#!/bin/bash
# Runs inside the hardened unit: the tool tests, then Chromium.
set -u
cd /tmp
status=0
echo "running as $(id -un) ($(id -u)), HOME=$HOME"
for tests in "lib-tests tools::terminal bash::" bash-service-tests; do
    # shellcheck disable=SC2086 # the test filters are separate words
    /opt/tools/$tests --test-threads=2 >/tmp/tests.out 2>&1 || status=1
    grep -E "^test result|FAILED|panicked" /tmp/tests.out
done
dom="$(timeout 60 /usr/lib/chromium/chromium --headless=new --disable-dev-shm-usage \
    --user-data-dir=/tmp/chromium-profile --dump-dom 'data:text/html,<p>chromium-ok</p>' 2>/dev/null)"
if grep -q chromium-ok <<<"$dom"; then echo "chromium: rendered with its sandbox"; else echo "chromium: FAILED"; status=1; fi
exit $status
EOF
chmod 0755 "$work/tools/run"
# The tool test unit: agent-server.service with the tests as a one-shot
# ExecStart instead of the server; every other setting is the same.
sed -e 's/^Type=notify$/Type=oneshot/' \
    -e 's|^ExecStart=.*|ExecStart=/opt/tools/run|' \
    -e '/^WatchdogSec=/d' -e '/^NotifyAccess=/d' -e '/^Restart/d' \
    -e '/^Requires=agent-server.socket$/d' -e '/^After=agent-server.socket$/d' \
    -e 's/^Description=.*/Description=agent-server tool tests under the service hardening/' \
    systemd/agent-server.service >"$work/agent-server-tooltest.service"
grep -q '^ExecStart=/opt/tools/run$' "$work/agent-server-tooltest.service" || fail "could not derive the tool test unit"

systemd-nspawn --quiet --directory="$ROOTFS" --volatile=overlay --boot --register=no --keep-unit \
    --console=passive --machine="$MACHINE" \
    --bind-ro="$binary:/usr/local/bin/agent-server" \
    --bind-ro="$PWD/systemd/agent-server.service:/etc/systemd/system/agent-server.service" \
    --bind-ro="$PWD/systemd/agent-server.socket:/etc/systemd/system/agent-server.socket" \
    --bind-ro="$work/socket.d:/etc/systemd/system/agent-server.socket.d" \
    --bind-ro="$work/agent-server-tooltest.service:/etc/systemd/system/agent-server-tooltest.service" \
    --bind-ro="$work/etc-agent-server:/etc/agent-server" \
    --bind-ro="$work/tools:/opt/tools" \
    >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!

# The container's PID 1 is nspawn's child once it has booted (an earlier
# child may be a short-lived helper), so it is looked up on every attempt.
leader=""
inside() { nsenter --target "$leader" --all -- "$@"; }
state=""
for _ in $(seq 300); do
    kill -0 "$nspawn_pid" 2>/dev/null || fail "the container exited: $(cat "$work/nspawn.log")"
    leader="$(pgrep -P "$nspawn_pid" | head -1 || true)"
    if [ -n "$leader" ]; then
        state="$(inside systemctl is-system-running 2>/dev/null || true)"
        case "$state" in running | degraded) break ;; esac
    fi
    sleep 0.2
done
case "$state" in
    running | degraded) ;;
    *) fail "the container's systemd did not come up (${state:-no answer}): $(tail -5 "$work/nspawn.log")" ;;
esac

inside systemctl start agent-server.socket
[ "$(inside systemctl is-active agent-server.service || true)" = inactive ] \
    || fail "the service started before its socket was used"
health="$(curl -sS --max-time 20 "http://127.0.0.1:$port/health")" \
    || fail "no answer through the socket: $(inside journalctl -u agent-server --no-pager -n 20)"
[ "$health" = '{"status":"ok"}' ] || fail "/health answered $health"
show() { inside systemctl show agent-server.service -p "$1" --value; }
[ "$(show ActiveState)/$(show SubState)" = active/running ] || fail "service is $(show ActiveState)/$(show SubState)"
[ "$(show StatusText)" = "listening on http://127.0.0.1:$port" ] || fail "status text: $(show StatusText)"
pid="$(show MainPID)"
uid="$(inside stat -c %u "/proc/$pid")"
[ "$uid" -ge 61184 ] && [ "$uid" -le 65519 ] || fail "the server runs as uid $uid, not a dynamic user"
inside test -d /var/lib/private/agent-server || fail "no state directory"
inside cat "/proc/$pid/environ" | tr '\0' '\n' | grep -qx 'CREDENTIALS_DIRECTORY=/run/credentials/agent-server.service' \
    || fail "no CREDENTIALS_DIRECTORY in the server's environment"
config="$(inside systemd-run --quiet --pipe --wait -p DynamicUser=yes \
    -p LoadCredential=secret-key:/etc/agent-server/secret-key /usr/local/bin/agent-server --print-config)"
grep -q '"secret_key": "\*\*\*\*\*\*\*\*\*\*"' <<<"$config" || fail "secret key not read from the credential: $config"

inside journalctl -u agent-server.service -o json --no-pager >"$work/journal.json"
python3 - "$work/journal.json" <<'EOF' || fail "the journal lacks the server's structured records"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
ok = any(r.get("TARGET") == "agent_server::server" and r.get("PRIORITY") == "5"
         and r.get("MESSAGE", "").startswith("listening on") for r in records)
sys.exit(0 if ok else 1)
EOF

inside systemctl stop agent-server.service agent-server.socket
[ "$(show Result)" = success ] || fail "stopping ended in $(show Result)"
[ "$(show ExecMainStatus)" = 0 ] || fail "the server exited with $(show ExecMainStatus) on SIGTERM"
echo "systemd-nspawn: socket activation, READY, dynamic user, credential, journal fields and a clean stop under systemd"

inside systemctl start agent-server-tooltest.service || true
inside journalctl -u agent-server-tooltest.service -o cat --no-pager >"$work/tooltest.log"
[ "$(inside systemctl show agent-server-tooltest.service -p Result --value)" = success ] \
    || fail "tools under the hardening:"$'\n'"$(grep -v '^$' "$work/tooltest.log" | tail -20)"
grep -E "^test result|^chromium" "$work/tooltest.log" | sed 's/^/systemd-nspawn: hardened unit: /'
