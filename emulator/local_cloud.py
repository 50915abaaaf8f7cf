"""Serve ministack, the local cloud that runs Lambda code, on a loopback port.

moto (moto_server.py) is the project's control plane: faithful, but it runs no
Lambda code and routes no HTTP API traffic. ministack runs `provided.al2023`
bootstraps as local child processes behind its own Lambda Runtime API, and
routes API Gateway v2 requests to them, so a test can deploy with the deployer
and call the API the way clients do:

    http://127.0.0.1:PORT/_aws/execute-api/<apiId>/<stage>/<path>

This launcher binds the port first (port 0 picks a free one), then points
ministack at it (GATEWAY_PORT), and the functions it runs at it too
(AWS_ENDPOINT_URL), so they reach its DynamoDB. It keeps the same request log
as moto_server.py (GET/DELETE /_emulator/requests) and prints one line,
"READY http://127.0.0.1:PORT", once the socket is listening.

Linearizable: ministack serves every request on one asyncio event loop, and
its DynamoDB handlers are synchronous functions that never await, so each
DynamoDB operation (conditional writes and transactions included) runs to
completion before the next begins. The function's concurrency tests, run
against this launcher, hold their exact counts.

Shims (local_cloud_shims.py) add what ministack lacks of AWS's behaviour,
each named and documented there: `runtime_api_tcp_nodelay` (the Runtime API
hands out events without Nagle's delay) and `logs_without_fixed_wait` (a
function's output is collected without a fixed wait after each invocation).
LOCAL_CLOUD_WITHOUT_SHIMS=NAME[,NAME] leaves some out, to measure them; GET
/_emulator/shims reports what they did.

The function processes are children of this launcher, in its own process
group; on SIGTERM, SIGINT, or (with --exit-with-stdin) end of standard input,
the whole group is ended, so no bootstrap outlives the emulator.

Usage: python local_cloud.py [--host 127.0.0.1] [--port 0] [--pid-file F] [--exit-with-stdin]
"""

import argparse
import asyncio
import os
import shutil
import signal
import socket
import tempfile

from request_log import LOG_PATH, RequestLog, describe
from lifetime import end_with_stdin
import local_cloud_shims

# The account moto uses too, so ARNs are the same on both emulators.
ACCOUNT_ID = "123456789012"


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--pid-file", help="write this process id to the file")
    parser.add_argument("--exit-with-stdin", action="store_true", help="exit when standard input reaches end of file")
    return parser.parse_args()


def bind(host, port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(1024)
    listener.set_inheritable(True)
    return listener


def with_request_log(app, log):
    """ASGI middleware: answer LOG_PATH, and log every other HTTP request."""

    async def logged(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        path = scope.get("path", "")
        if path in (LOG_PATH, local_cloud_shims.SHIMS_PATH):
            payload = log.answer(scope["method"]) if path == LOG_PATH else local_cloud_shims.report()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers", [])}
        log.append(describe(scope["method"], path, scope.get("query_string", b"").decode("latin-1"), headers, body))
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return logged


def main():
    args = parse_arguments()
    listener = bind(args.host, args.port)
    port = listener.getsockname()[1]
    endpoint = f"http://{args.host}:{port}"
    scratch = tempfile.mkdtemp(prefix="local-cloud-")
    # ministack reads these when its modules are imported.
    os.environ.update(
        {
            "GATEWAY_PORT": str(port),
            "BIND_HOST": args.host,
            "AWS_ENDPOINT_URL": endpoint,
            "MINISTACK_ACCOUNT_ID": ACCOUNT_ID,
            "TMPDIR": scratch,
        }
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    tempfile.tempdir = scratch
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # already a group leader

    from hypercorn.asyncio import serve
    from hypercorn.config import Config
    from ministack.app import app as ministack_app

    without = [name for name in os.environ.get("LOCAL_CLOUD_WITHOUT_SHIMS", "").split(",") if name]
    local_cloud_shims.install(without)

    def stop(*_):
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        finally:
            os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_stdin:
        end_with_stdin(stop)
    if args.pid_file:
        with open(args.pid_file, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")

    config = Config()
    config.bind = [f"fd://{listener.fileno()}"]
    config.keep_alive_timeout = 75
    config.loglevel = os.environ["LOG_LEVEL"]
    config.accesslog = None
    print(f"READY {endpoint}", flush=True)
    asyncio.run(serve(with_request_log(ministack_app, RequestLog()), config))


if __name__ == "__main__":
    main()
