"""Measure the playground API's release binary: size, cold start, peak memory under load.

Run through scripts/measure (which builds the binary and installs the emulator).
Cold start is process start to the first 200 from GET /health in local mode
(that request makes one DescribeTable call to the emulator). Peak memory is the
process's VmHWM after a bounded load of mixed PUT and GET requests on loopback.
"""

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = json.dumps(body) if body is not None else None
        connection.request(method, path, body=payload, headers={"content-type": "application/json"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def start(binary, env, port, create=False):
    env = dict(env, PORT=str(port))
    args = [binary] + (["--create-table"] if create else [])
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(port, process, deadline_s=30.0):
    deadline = time.perf_counter() + deadline_s
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"playground-api exited with {process.returncode}")
        try:
            if request(port, "GET", "/health") == 200:
                return
        except OSError:
            pass
    raise SystemExit("playground-api did not become healthy")


def stop(process):
    process.terminate()
    process.wait(timeout=10)


def main():
    binary, endpoint = sys.argv[1], sys.argv[2]
    runs = int(os.environ.get("COLD_START_RUNS", "20"))
    load_seconds = float(os.environ.get("LOAD_SECONDS", "10"))
    workers = int(os.environ.get("LOAD_WORKERS", "16"))
    env = dict(
        os.environ,
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        TABLE_NAME="PlaygroundScores-measure",
        RUST_LOG="warn",
    )
    env.pop("AWS_LAMBDA_RUNTIME_API", None)

    port = free_port()
    process = start(binary, env, port, create=True)
    wait_healthy(port, process)
    stop(process)

    cold = []
    for _ in range(runs):
        port = free_port()
        began = time.perf_counter()
        process = start(binary, env, port)
        wait_healthy(port, process)
        cold.append((time.perf_counter() - began) * 1000)
        stop(process)

    port = free_port()
    process = start(binary, env, port)
    wait_healthy(port, process)
    request(port, "POST", "/tables", {"tableId": "measure"})
    stop_at = time.perf_counter() + load_seconds
    done = [0]
    errors = [0]
    lock = threading.Lock()

    def worker(index):
        count = 0
        while time.perf_counter() < stop_at:
            user = f"u{(index * 7919 + count) % 100}"
            if count % 2:
                status = request(port, "GET", f"/tables/measure/users/{user}")
                ok = status in (200, 404)
            else:
                status = request(port, "PUT", f"/tables/measure/users/{user}",
                                 {"submissionCount": count, "totalCount": count + 1})
                ok = status == 200
            count += 1
            with lock:
                done[0] += 1
                errors[0] += 0 if ok else 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open(f"/proc/{process.pid}/status", encoding="ascii") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    stop(process)

    size = os.path.getsize(binary)
    print(f"release binary            {size / 1024 / 1024:.1f} MiB ({size} bytes)")
    print(f"cold start, {runs} runs       median {statistics.median(cold):.1f} ms, "
          f"min {min(cold):.1f} ms, max {max(cold):.1f} ms")
    print(f"load                      {done[0]} requests in {load_seconds:.0f} s by {workers} workers "
          f"({done[0] / load_seconds:.0f}/s), {errors[0]} errors")
    print(f"peak memory under load    VmHWM {fields['VmHWM'].strip()}")
    if errors[0]:
        sys.exit(1)


if __name__ == "__main__":
    main()
