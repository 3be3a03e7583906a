#!/bin/sh
# Browser tool set figures: cold first call, warm per-call times, Chromium
# memory per open session. Needs chromium and chromium-driver
# (apt-get install -y chromium chromium-driver). Pages are served on
# 127.0.0.1 by the test page server; no network access.
set -eu
cd "$(dirname "$0")/.."
cargo build --quiet --example browser_bench
exec ./target/debug/examples/browser_bench
