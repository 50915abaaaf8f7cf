"""Serve moto's AWS emulator on a loopback port, one request at a time.

moto's own server answers requests on parallel threads with no isolation between
them: concurrent DynamoDB transactions and conditional writes can half-apply.
This launcher wraps moto's WSGI application in a lock, so requests are executed
one after another (connections are still accepted concurrently). The emulator
is then linearizable like DynamoDB, and concurrency tests test our code rather
than the emulator's race.

Usage: python moto_server.py [--host 127.0.0.1] [--port 0] [--pid-file F] [--exit-with-stdin]

With --port 0 a free port is chosen. Once the socket is bound the launcher prints
one line, "READY http://HOST:PORT", on standard output. With --exit-with-stdin it
exits when its standard input closes, so a test process that dies (even by
SIGKILL) never leaves an emulator behind.
"""

import argparse
import os
import signal
import sys
import threading

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server  # noqa: E402


class OneRequestAtATime:
    """WSGI middleware: the whole request, body iteration included, runs under one lock."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            body = self.app(environ, start_response)
            try:
                return [b"".join(body)]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--pid-file", help="write this process id to the file")
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="exit when standard input reaches end of file",
    )
    args = parser.parse_args()

    app = OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler
    )
    if args.pid_file:
        with open(args.pid_file, "w", encoding="ascii") as handle:
            handle.write(f"{os.getpid()}\n")

    def stop(*_):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_stdin:

        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)

        threading.Thread(target=watch_stdin, daemon=True).start()

    print(f"READY http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
