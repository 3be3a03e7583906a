#!/usr/bin/env bash
# Compares the grep tool with ripgrep on a generated 10,000-file tree
# (100 folders x 100 files of ~2 KB, 1% containing the needle, a .gitignore
# hiding one folder, some hidden and binary files).
#
#   bench/grep_vs_rg.sh            # dev profile (deps at opt-level 1)
#   PROFILE=release bench/grep_vs_rg.sh
#
# Prints the median of RUNS (default 7) warm-cache runs for `rg -l -i`
# (parallel), `rg -l -i --sortr=modified` (what the Python tool runs; rg
# sorts single-threaded) and our tool, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
PROFILE=${PROFILE:-dev}

if ! command -v rg >/dev/null; then
    apt-get install -y ripgrep >/dev/null || { apt-get update >/dev/null && apt-get install -y ripgrep >/dev/null; }
fi

TREE=$(mktemp -d)
trap 'rm -rf "$TREE"' EXIT
python3 - "$TREE" <<'PY'
import os, random, sys
root = sys.argv[1]
random.seed(7)
words = ["alpha", "beta", "gamma", "delta", "config", "return", "value", "index", "async", "struct"]
os.makedirs(os.path.join(root, ".git"))
with open(os.path.join(root, ".gitignore"), "w") as f:
    f.write("d099/\n*.log\n")
n = 0
for d in range(100):
    dp = os.path.join(root, f"d{d:03}")
    os.makedirs(dp)
    for i in range(100):
        name = f"f{i:03}.txt" if i % 10 else f"f{i:03}.log"
        if i == 50:
            name = f".hidden{i}.txt"
        body = "\n".join(" ".join(random.choice(words) for _ in range(8)) for _ in range(40))
        if n % 100 == 1:
            body += "\nthe NeedleInHaystack is here\n"
        mode = "w"
        if i == 77:
            body = "binary\0" + body
        with open(os.path.join(dp, name), mode) as f:
            f.write(body)
        n += 1
print(f"generated {n} files in {root}")
PY

if [ "$PROFILE" = release ]; then
    cargo build --quiet --release --example grep_bench
    BIN=target/release/examples/grep_bench
else
    cargo build --quiet --example grep_bench
    BIN=target/debug/examples/grep_bench
fi

median_ms() {
    python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs = int(sys.argv[1]); cmd = sys.argv[2:]
subprocess.run(cmd, stdout=subprocess.DEVNULL)  # warm the page cache
times = []
for _ in range(runs):
    t = time.perf_counter(); subprocess.run(cmd, stdout=subprocess.DEVNULL); times.append((time.perf_counter() - t) * 1000)
times.sort(); print(f"{times[len(times) // 2]:.1f}")
PY
}

RG=$(median_ms rg -l -i needleinhaystack "$TREE")
RG_SORTED=$(median_ms rg -l -i needleinhaystack "$TREE" --sortr=modified)
OURS_LINE=$("$BIN" "$TREE" needleinhaystack "$RUNS")
OURS=${OURS_LINE##*median_ms=}
echo "rg -l -i (parallel):           ${RG} ms  ($(rg -l -i needleinhaystack "$TREE" | wc -l) files)"
echo "rg -l -i --sortr=modified:     ${RG_SORTED} ms"
echo "grep tool ($PROFILE profile):  ${OURS} ms  (${OURS_LINE%% *})"
python3 -c "import sys; o,a,b=map(float,sys.argv[1:]); print(f'ratio ours/rg = {o/a:.2f}, ours/rg-sorted = {o/b:.2f}')" "$OURS" "$RG" "$RG_SORTED"
