#!/usr/bin/env bash
# Checks the Nix files with nothing but nix-instantiate and no network:
#   * every .nix file parses;
#   * flake.nix has the attributes and inputs a flake needs;
#   * nix/package.nix and nix/module.nix evaluate against stubs
#     (tests/packaging/nix-eval.nix), every check there holds, and the
#     module's service settings equal systemd/agent-server.service's;
#   * the socket and service units the module generates pass
#     `systemd-analyze verify` and the same exposure threshold
#     (tests/packaging/systemd-verify.sh).
# `nix build` and `nix run` need nixpkgs from the network: see README "Deploy".
#
#   tests/packaging/nix.sh [BINARY]
set -euo pipefail

cd "$(dirname "$0")/../.."
fail() { echo "nix: FAIL: $*" >&2; exit 1; }
command -v nix-instantiate >/dev/null || fail "nix-instantiate is not installed (apt-get install nix-bin)"
# Debian's nix-bin names a build users group that does not exist; nothing is
# built here, so none is needed (and the warning would hide real output).
nix_instantiate() { nix-instantiate --option build-users-group '' "$@"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

count=0
while IFS= read -r file; do
    nix_instantiate --parse "$file" >/dev/null 2>"$work/parse.err" || fail "$file does not parse: $(cat "$work/parse.err")"
    count=$((count + 1))
done < <(git ls-files --cached --others --exclude-standard -- '*.nix')
[ "$count" -ge 4 ] || fail "only $count .nix files found"

shape="$(nix_instantiate --eval --strict -E '
  let flake = import ./flake.nix;
  in [ (builtins.attrNames flake) (builtins.attrNames flake.inputs) (builtins.functionArgs flake.outputs) ]')"
[ "$shape" = '[ [ "description" "inputs" "outputs" ] [ "nixpkgs" ] { nixpkgs = false; self = false; } ]' ] \
    || fail "unexpected flake shape: $shape"

nix_instantiate --eval --strict --json tests/packaging/nix-eval.nix >"$work/eval.json" 2>"$work/eval.err" \
    || fail "evaluation failed: $(cat "$work/eval.err")"
python3 - "$work" <<'EOF' || exit 1
import json, pathlib, sys
work = pathlib.Path(sys.argv[1])
result = json.loads((work / "eval.json").read_text())
if result["failed"]:
    print("nix: FAIL: checks failed:", ", ".join(result["failed"]), file=sys.stderr)
    for line in result["differences"]:
        print("  " + line, file=sys.stderr)
    sys.exit(1)
(work / "nixos-agent-server.service").write_text(result["serviceUnit"])
(work / "nixos-agent-server.socket").write_text(result["socketUnit"])
EOF
echo "nix: $count files parse; flake shape, package and module checks hold"

tests/packaging/systemd-verify.sh "${1:-target/x86_64-unknown-linux-musl/release/agent-server}" \
    "$work/nixos-agent-server.socket" "$work/nixos-agent-server.service"
