#!/usr/bin/env python3
"""Start-up time and idle memory of agent-server (standard library only).

usage: startup.py BINARY RUNS

Each run starts BINARY on a free loopback port in a fresh directory, polls
GET /alive every millisecond until it answers 200, and records the time
from process start to that answer. After the last run the server is left
idle for 1.5 s and its VmRSS is read. Prints one JSON object.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def start(binary, workdir):
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port)],
        cwd=workdir,
        env={"PATH": os.environ.get("PATH", "")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = t0 + 20
    while not alive(port):
        if time.perf_counter() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit("agent-server did not answer /alive")
        time.sleep(0.001)
    return proc, time.perf_counter() - t0


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def main():
    binary, runs = sys.argv[1], int(sys.argv[2])
    times = []
    rss = None
    with tempfile.TemporaryDirectory() as workdir:
        for i in range(runs):
            proc, elapsed = start(binary, workdir)
            times.append(elapsed)
            if i == runs - 1:
                time.sleep(1.5)
                rss = vm_rss_kb(proc.pid)
            proc.terminate()
            proc.wait(timeout=20)
    print(json.dumps({
        "startup_ms_median": round(statistics.median(times) * 1000, 2),
        "startup_ms_all": [round(t * 1000, 2) for t in times],
        "idle_rss_kb": rss,
    }))


main()
