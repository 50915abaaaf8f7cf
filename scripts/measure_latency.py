"""Warm latency of the API at a URL: p50 and p99 of a read and a write.

    python3 scripts/measure_latency.py API_BASE_URL [--requests N] [--json]

API_BASE_URL is the stage's URL through API Gateway, as `scripts/dev` prints it
(http://127.0.0.1:4567/_aws/execute-api/<apiId>/dev), or any deployment's
api_base_url. It creates a table of its own with one user, warms up, then times
N sequential requests of each kind on one keep-alive connection:

    read   GET /tables/{tableId}/users
    write  PUT /tables/{tableId}/users/{username}   (an existing user: one conditional update)

and deletes the table afterwards (where the API allows it). Standard library only.
"""

import argparse
import http.client
import json
import statistics
import sys
import time
import urllib.parse
import uuid

WARM_UP = 20


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


class Api:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base.rstrip("/"))
        if url.scheme not in ("http", "https"):
            raise SystemExit(f"measure_latency: not an http(s) URL: {base}")
        connection = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        self.connection = connection(url.netloc, timeout=30)
        self.prefix = url.path

    def call(self, method, path, body=None, expect=(200,)):
        headers = {"content-type": "application/json"} if body is not None else {}
        payload = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        self.connection.request(method, self.prefix + path, body=payload, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        if response.status not in expect:
            raise SystemExit(f"measure_latency: {method} {path} answered {response.status}: {data[:300]!r}")
        return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind (default 200)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    api = Api(args.base_url)
    table = f"latency-{uuid.uuid4().hex[:10]}"
    api.call("POST", "/tables", {"tableId": table, "displayName": "latency"}, expect=(201,))
    user = f"/tables/{table}/users/student"
    read = f"/tables/{table}/users"
    api.call("PUT", user, {"submissionCount": 1, "totalCount": 1})
    for _ in range(WARM_UP):
        api.call("GET", read)
        api.call("PUT", user, {"submissionCount": 1, "totalCount": 2})
    reads, writes = [], []
    for index in range(args.requests):
        reads.append(api.call("GET", read))
        writes.append(api.call("PUT", user, {"submissionCount": index % 5, "totalCount": 10}))
    api.call("DELETE", f"/tables/{table}", expect=(200, 204, 403))

    figures = {
        name: {
            "requests": len(samples),
            "p50_ms": round(percentile(samples, 0.50) * 1000, 2),
            "p99_ms": round(percentile(samples, 0.99) * 1000, 2),
            "mean_ms": round(statistics.fmean(samples) * 1000, 2),
        }
        for name, samples in (("read GET /tables/{id}/users", reads), ("write PUT /tables/{id}/users/{name}", writes))
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"warm latency through {args.base_url} ({args.requests} sequential requests each, after {WARM_UP} to warm up)")
    print(f"{'request':<40} {'p50':>9} {'p99':>9} {'mean':>9}")
    for name, figure in figures.items():
        print(f"{name:<40} {figure['p50_ms']:>6.2f} ms {figure['p99_ms']:>6.2f} ms {figure['mean_ms']:>6.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
