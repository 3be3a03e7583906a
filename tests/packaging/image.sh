#!/usr/bin/env bash
# Builds the OCI images from the Containerfile with buildah (no Docker
# engine, no registry: the Debian base is made here with debootstrap, and the
# binary is the prebuilt static release build), lints the Containerfile with
# hadolint, checks each image's configuration, starts each one with
# `buildah run` and asks /health from the host and `agent-server healthcheck`
# from inside. Prints the image sizes.
#
#   tests/packaging/image.sh [TARGET...]     targets: api runtime browser
#                                            (default: all three)
#
# Needs root (buildah with chroot isolation, debootstrap), buildah,
# debootstrap and hadolint; .ci/run's `image` stage installs them.
# The base image is built once and kept as localhost/agent-server-base:bookworm.
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() { echo "image: FAIL: $*" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(api runtime browser)

BASE=localhost/agent-server-base:bookworm
BINARY=target/x86_64-unknown-linux-musl/release/agent-server
[ -x "$BINARY" ] || fail "no static binary at $BINARY: run .ci/run release first"

# A storage of its own, with the vfs driver (no overlay support needed): CI
# neither sees nor disturbs other images on the machine, and the base image
# stays cached there between runs.
STORAGE="${AGENT_SERVER_IMAGE_STORAGE:-/var/tmp/agent-server-ci/containers}"
export BUILDAH_ISOLATION=chroot
buildah() {
    command buildah --root "$STORAGE/root" --runroot "$STORAGE/run" --storage-driver vfs "$@"
}

# Building and running containers must leave the host's own files alone
# (they are bind-mounted into every build step); checked at the end.
host_files=(/etc/resolv.conf /etc/hosts)
host_sums="$(sha256sum "${host_files[@]}")"

work="$(mktemp -d)"
containers=()
run_pids=()
server_pid=""
cleanup() {
    local pid ctr
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    for pid in "${run_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    for ctr in "${containers[@]}"; do buildah rm "$ctr" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# The stand-in for docker.io/library/debian:bookworm-slim: a minbase
# debootstrap, trimmed the way the official slim image is.
build_base() {
    buildah inspect --type image "$BASE" >/dev/null 2>&1 && return 0
    echo "image: building $BASE with debootstrap"
    local rootfs="$work/rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
        || fail "debootstrap: $(tail -5 "$work/debootstrap.log")"
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/* "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/log/*.log
    # As in the slim image: apt writes no package caches (they would be half
    # of every layer that runs apt-get update).
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    # The container runtime provides these.
    : >"$rootfs/etc/resolv.conf"
    rm -f "$rootfs/etc/hostname"
    local ctr
    ctr="$(buildah from scratch)"
    buildah copy "$ctr" "$rootfs" / >/dev/null
    buildah config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit --quiet --rm "$ctr" "$BASE" >/dev/null
}

build_base
echo "image: hadolint $(hadolint --version | grep -o '[0-9][0-9.]*' | head -1)"
hadolint Containerfile || fail "hadolint found problems in the Containerfile"

# The value of one field of an image's configuration, as JSON.
config_of() {
    buildah inspect --type image "$1" \
        | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["Docker"]["config"].get(sys.argv[1])))' "$2"
}

for target in "${targets[@]}"; do
    image="localhost/agent-server:$target"
    echo "image: building $image"
    start=$SECONDS
    buildah bud --quiet --format docker --layers=false \
        --build-arg BINARY=prebuilt --build-arg BASE_IMAGE="$BASE" \
        --target "$target" -t "$image" -f Containerfile . >"$work/bud-$target.log" 2>&1 \
        || fail "buildah bud --target $target:"$'\n'"$(tail -20 "$work/bud-$target.log")"
    echo "image: built $image in $((SECONDS - start)) s"

    [ "$(config_of "$image" User)" = '"65532:65532"' ] || fail "$image does not run as 65532"
    grep -q '"4004/tcp"' <<<"$(config_of "$image" ExposedPorts)" || fail "$image does not expose 4004"
    [ "$(config_of "$image" StopSignal)" = '"SIGTERM"' ] || fail "$image has no STOPSIGNAL SIGTERM"
    grep -q 'healthcheck' <<<"$(config_of "$image" Healthcheck)" || fail "$image has no HEALTHCHECK"
    volumes="$(config_of "$image" Volumes)"
    for volume in /var/lib/agent-server /workspace; do
        grep -q "\"$volume\"" <<<"$volumes" || fail "$image has no volume $volume"
    done

    # Start it as the image's own user, on the host's loopback (chroot
    # isolation shares the network), on a free port.
    ctr="$(buildah from --quiet "$image")"
    containers+=("$ctr")
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    buildah run --env OH_PORT="$port" "$ctr" -- /usr/local/bin/agent-server \
        >"$work/run-$target.out" 2>"$work/run-$target.err" &
    run_pids+=($!)
    health=""
    for _ in $(seq 100); do
        health="$(curl -s --max-time 2 "http://127.0.0.1:$port/health" 2>/dev/null)" && break
        sleep 0.1
    done
    [ "$health" = '{"status":"ok"}' ] \
        || fail "$image: no /health on port $port: $(cat "$work/run-$target.err")"
    buildah run --env OH_PORT="$port" "$ctr" -- /usr/local/bin/agent-server healthcheck >/dev/null \
        || fail "$image: the healthcheck subcommand failed inside the container"
    case "$target" in
        runtime | browser)
            # The terminal tool's shell, the CA bundle and the init are there,
            # and the state directory is the user's.
            out="$(buildah run "$ctr" -- bash -c 'id -un; test -s /etc/ssl/certs/ca-certificates.crt && echo ca; command -v tini; touch /var/lib/agent-server/w /workspace/w && echo writable')"
            [ "$out" = $'agent\nca\n/usr/bin/tini\nwritable' ] || fail "$image: unexpected shell check output: $out"
            ;;
    esac
    if [ "$target" = browser ]; then
        dom="$(buildah run "$ctr" -- /usr/lib/chromium/chromium --headless=new --no-sandbox \
            --disable-dev-shm-usage --dump-dom 'data:text/html,<p>chromium-ok</p>' 2>/dev/null)"
        grep -q chromium-ok <<<"$dom" || fail "$image: Chromium did not render a page"
    fi
    # `buildah run` does not pass signals on: SIGTERM goes to the server
    # itself, found as the owner of the listening socket, as a container
    # runtime's stop would send it.
    server_pid="$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
    [ -n "$server_pid" ] || fail "$image: cannot find the server's process"
    kill -TERM "$server_pid"
    status=0
    wait "${run_pids[-1]}" || status=$?
    server_pid=""
    [ "$status" -eq 0 ] || fail "$image: exit status $status after SIGTERM: $(cat "$work/run-$target.err")"
    grep -q "shutting down" "$work/run-$target.err" || fail "$image: no graceful shutdown: $(cat "$work/run-$target.err")"
    echo "image: $image answers /health and healthcheck, stops on SIGTERM"
done

[ "$(sha256sum "${host_files[@]}")" = "$host_sums" ] \
    || fail "the host's ${host_files[*]} changed during the image checks"

echo "image: sizes (uncompressed, as stored)"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep -E "localhost/agent-server(-base)?:" | sed 's/^/  /'
# Images left untagged by earlier builds of the same tags only take space.
buildah rmi --prune >/dev/null 2>&1 || true
