#!/usr/bin/env python3
"""Round trip of POST /api/bash/execute_bash_command with `true` (standard library only).

usage: bash_roundtrip.py BINARY [REQUESTS]    (default 200 requests)

Starts BINARY on a free loopback port in a fresh directory with a session
key, sends 10 warm-up requests, then REQUESTS requests one after another on
one keep-alive connection, and prints one JSON object with the median, 90th
percentile, minimum and maximum in milliseconds. Each request spawns
`/bin/sh -c true`, waits for it, and stores its command and output events.
"""

import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

KEY = "bench-key"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_alive(port, proc):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the server exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/alive")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.02)
    sys.exit("the server did not start")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.realpath(sys.argv[1])
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    workdir = tempfile.mkdtemp()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "OH_SESSION_API_KEYS_0": KEY,
        "OH_ENABLE_BROWSER": "false",
        "OH_LOG_LEVEL": "warn",
    }
    proc = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_alive(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"command": "true"})
        headers = {"X-Session-API-Key": KEY, "Content-Type": "application/json"}

        def once():
            t0 = time.perf_counter()
            conn.request("POST", "/api/bash/execute_bash_command", body, headers)
            response = conn.getresponse()
            payload = response.read()
            elapsed = (time.perf_counter() - t0) * 1000
            if response.status != 200 or json.loads(payload)["exit_code"] != 0:
                sys.exit(f"unexpected answer {response.status}: {payload!r}")
            return elapsed

        for _ in range(10):
            once()
        times = sorted(once() for _ in range(requests))
        print(
            json.dumps(
                {
                    "requests": requests,
                    "median_ms": round(statistics.median(times), 3),
                    "p90_ms": round(times[int(len(times) * 0.9) - 1], 3),
                    "min_ms": round(times[0], 3),
                    "max_ms": round(times[-1], 3),
                }
            )
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
