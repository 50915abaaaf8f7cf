"""Shims: AWS behaviour the local cloud (ministack) lacks, added by its launcher.

Each shim is named, says what AWS does that ministack does not, and can be
left out for a measurement with LOCAL_CLOUD_WITHOUT_SHIMS=NAME[,NAME...] (what
`scripts/dev --measure` compares). They patch ministack's classes from here, at
start-up, never its installed files.

- `runtime_api_tcp_nodelay`: AWS's Lambda Runtime API hands the bootstrap its
  next event at once. ministack's Runtime API for `provided.*` runtimes (a
  `http.server` handler) writes an event's headers and its body in two writes
  on a connection with Nagle's algorithm on, so the body waits for the
  client's delayed ACK: about 40 ms on every invocation. The shim sets
  TCP_NODELAY on every Runtime API connection (`disable_nagle_algorithm`, the
  standard library's own switch).
- `logs_without_fixed_wait`: on AWS, what a function writes reaches CloudWatch
  Logs without delaying its answer. After every invocation ministack waits for
  the bootstrap's output to arrive, up to 50 ms when it wrote nothing (the
  usual case), before it answers. The shim reads the bootstrap's output as it
  comes and, once the function has answered, takes exactly what it wrote
  until then: everything in the pipe is read first (the kernel says how many
  bytes are left), with no timer. Those lines still go to the function's log
  group (`deployer logs`) and to `LogType: Tail`.

What the shims did is reported at GET /_emulator/shims, so tests can assert the
socket option read back from each Runtime API connection, and that no drain of
a function's output slept (whether or not the shims are on: the observation is
separate from the fix).
"""

import fcntl
import json
import os
import queue
import select
import socket
import struct
import termios
import threading
import time as _time

SHIMS_PATH = "/_emulator/shims"
NAMES = ("runtime_api_tcp_nodelay", "logs_without_fixed_wait")

_lock = threading.Lock()
_report = {
    "active": [],
    "runtime_api_connections": 0,
    "runtime_api_connections_without_nodelay": 0,
    "log_drains": 0,
    "log_lines": 0,
    "sleeps_while_draining_logs": 0,
}
_draining = threading.local()


def _count(key, by=1):
    with _lock:
        _report[key] += by


def report():
    """What the shims did, as JSON bytes (GET /_emulator/shims)."""
    with _lock:
        return json.dumps(_report).encode()


def install(without=()):
    """Observe ministack's Runtime API and log drains, and install every shim
    not named in `without`. Returns the names installed."""
    unknown = set(without) - set(NAMES)
    if unknown:
        raise SystemExit(f"LOCAL_CLOUD_WITHOUT_SHIMS names unknown shims {sorted(unknown)}; known: {', '.join(NAMES)}")
    from ministack.core import lambda_runtime

    installed = []
    if "runtime_api_tcp_nodelay" not in without:
        _runtime_api_tcp_nodelay(lambda_runtime.ProvidedWorker)
        installed.append("runtime_api_tcp_nodelay")
    if "logs_without_fixed_wait" not in without:
        _logs_without_fixed_wait(lambda_runtime.ProvidedWorker, lambda_runtime)
        installed.append("logs_without_fixed_wait")
    # Last, so it observes whatever serves: the shims, or ministack's own code.
    _observe(lambda_runtime)
    _report["active"] = installed
    return installed


def _observe(lambda_runtime):
    """Count what the shims are about, from ministack's own code paths: the
    TCP_NODELAY option of each Runtime API connection as read back from its
    socket, and every sleep taken while a function's output is drained."""
    worker = lambda_runtime.ProvidedWorker
    build = worker._build_handler_class

    def build_observed(self, *args, **kwargs):
        handler = build(self, *args, **kwargs)
        setup = handler.setup

        def setup_observed(request_handler):
            setup(request_handler)
            nodelay = request_handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            _count("runtime_api_connections")
            if not nodelay:
                _count("runtime_api_connections_without_nodelay")

        handler.setup = setup_observed
        return handler

    worker._build_handler_class = build_observed

    drain = worker._drain_stderr_bounded

    def drain_observed(self, *args, **kwargs):
        _draining.active = True
        try:
            text = drain(self, *args, **kwargs)
        finally:
            _draining.active = False
        _count("log_drains")
        _count("log_lines", len(text.splitlines()) if text else 0)
        return text

    worker._drain_stderr_bounded = drain_observed

    class ObservedTime:
        """ministack's `time` module, counting the sleeps taken during a drain."""

        def __getattr__(self, name):
            return getattr(_time, name)

        @staticmethod
        def sleep(seconds):
            if getattr(_draining, "active", False):
                _count("sleeps_while_draining_logs")
            _time.sleep(seconds)

    lambda_runtime.time = ObservedTime()


def _runtime_api_tcp_nodelay(worker):
    build = worker._build_handler_class

    def build_without_nagle(self, *args, **kwargs):
        handler = build(self, *args, **kwargs)
        # socketserver.StreamRequestHandler.setup sets TCP_NODELAY when this is true.
        handler.disable_nagle_algorithm = True
        return handler

    worker._build_handler_class = build_without_nagle


class _Output:
    """A bootstrap's output pipe, read as it comes by one thread.

    The pump reads and queues a chunk under `changed`, so whoever holds it sees
    either bytes still in the pipe (FIONREAD) or every line they made queued.
    """

    def __init__(self, stream):
        self.fd = stream.fileno()
        self.changed = threading.Condition()
        self.open = True

    def pending(self):
        try:
            raw = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        return struct.unpack("i", raw)[0]


def _logs_without_fixed_wait(worker, lambda_runtime):
    max_lines = lambda_runtime._PROVIDED_LOG_MAX_LINES

    def put(log_queue, line):
        try:
            log_queue.put_nowait(line)
        except queue.Full:  # as ministack does: drop the oldest, never block the pipe
            try:
                log_queue.get_nowait()
            except queue.Empty:
                pass
            try:
                log_queue.put_nowait(line)
            except queue.Full:
                pass

    def pump_output(self, stream, log_queue):
        output = _Output(stream)
        self._shim_output = output
        poller = select.poll()
        poller.register(output.fd, select.POLLIN | select.POLLHUP)
        partial = b""
        try:
            while True:
                poller.poll()
                with output.changed:
                    chunk = os.read(output.fd, 65536)
                    if chunk:
                        *lines, partial = (partial + chunk).split(b"\n")
                        for line in lines[-max_lines:]:
                            put(log_queue, line.decode("utf-8", errors="replace").rstrip("\r"))
                    else:
                        if partial:
                            put(log_queue, partial.decode("utf-8", errors="replace"))
                        output.open = False
                    output.changed.notify_all()
                if not chunk:
                    break
        except Exception:
            with output.changed:
                output.open = False
                output.changed.notify_all()
        finally:
            try:
                stream.close()
            except Exception:
                pass

    def drain_exactly(self, *_args, **_kwargs):
        """Everything the bootstrap wrote so far: the pipe is read to its end
        first (the pump is woken by the bytes themselves), then the queue is
        taken. Called once the function has answered, so that is all it wrote
        while handling the event. No timer: no bytes, no wait."""
        output = getattr(self, "_shim_output", None)
        if output is not None:
            with output.changed:
                while output.open and output.pending() > 0:
                    output.changed.wait()
        return self._drain_stderr()

    worker._pump_output = pump_output
    worker._drain_stderr_bounded = drain_exactly
