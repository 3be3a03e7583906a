#!/usr/bin/env bash
# Compares the grep tool with ripgrep on a generated 10,000-file tree
# (100 folders x 100 files of ~2 KB, 1% containing the needle, a .gitignore
# hiding one folder, some hidden and binary files).
#
#   bench/grep_vs_rg.sh            # dev profile (deps at opt-level 1)
#   PROFILE=release bench/grep_vs_rg.sh
#
# Prints the medians of RUNS (default 11) interleaved warm-cache runs of `rg -l -i`
# (parallel), `rg -l -i --sortr=modified` (what the Python tool runs; rg
# sorts single-threaded) and our tool (one search per process, like rg), and
# the median of the per-round ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-11}
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

# Interleaved rounds (rg, rg sorted, ours) so the shared machine's load hits
# all three alike; ratios are taken per round, then their median.
python3 - "$RUNS" "$BIN" "$TREE" "$PROFILE" <<'PY'
import os, statistics, subprocess, sys, time
runs, binary, tree, profile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
rg = ["rg", "-l", "-i", "needleinhaystack", tree]
rg_sorted = rg + ["--sortr=modified"]
ours = [binary, tree, "needleinhaystack", "1"]

def timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=False).stdout
    return (time.perf_counter() - t) * 1000, out

for cmd in (rg, rg_sorted, ours):  # warm the page cache
    timed(cmd)
rows = {"rg": [], "rg_sorted": [], "ours_process": [], "ours_tool": []}
for _ in range(runs):
    rows["rg"].append(timed(rg)[0])
    rows["rg_sorted"].append(timed(rg_sorted)[0])
    wall, out = timed(ours)
    rows["ours_process"].append(wall)
    line = out.decode().strip()
    rows["ours_tool"].append(float(line.rsplit("median_ms=", 1)[1]))
files = len(subprocess.run(rg, stdout=subprocess.PIPE).stdout.splitlines())
med = {k: statistics.median(v) for k, v in rows.items()}
ratio = statistics.median(o / r for o, r in zip(rows["ours_process"], rows["rg"]))
ratio_sorted = statistics.median(o / r for o, r in zip(rows["ours_process"], rows["rg_sorted"]))
load = open("/proc/loadavg").read().split()[0]
print(f"{runs} interleaved rounds, load average {load}, {files} matching files ({line.split()[0]})")
print(f"rg -l -i (parallel):               {med['rg']:.1f} ms")
print(f"rg -l -i --sortr=modified:         {med['rg_sorted']:.1f} ms")
print(f"grep tool, whole process ({profile}): {med['ours_process']:.1f} ms")
print(f"grep tool, the search alone:       {med['ours_tool']:.1f} ms")
print(f"median ratio ours/rg = {ratio:.2f}, ours/rg-sorted = {ratio_sorted:.2f}")
PY
