"""The request log both emulator launchers keep, in one shape.

Each served request is described by its method, path, query, the SigV4 signing
service and the operation it names (JSON-protocol `X-Amz-Target`, or the
query-protocol `Action`). Tests read the log with GET /_emulator/requests and
clear it with DELETE /_emulator/requests, to assert which calls a run made (for
example: no mutating call on a rerun).
"""

import json
import re
import threading
import urllib.parse

LOG_PATH = "/_emulator/requests"


def service_of(authorization):
    """The signing service in a SigV4 credential scope (s3, dynamodb, iam, ...)."""
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", authorization or "")
    return match.group(1) if match else None


def describe(method, path, query, headers, body):
    """What a request asked for. `headers` maps lower-case names to values."""
    action = None
    if body and b"Action=" in body:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        action = (form.get("Action") or [None])[0]
    if action is None:
        action = (urllib.parse.parse_qs(query or "").get("Action") or [None])[0]
    return {
        "method": method,
        "path": path,
        "query": query or "",
        "target": headers.get("x-amz-target"),
        "action": action,
        "service": service_of(headers.get("authorization")),
    }


class RequestLog:
    """Thread-safe list of described requests."""

    def __init__(self):
        self._lock = threading.Lock()
        self._entries = []

    def append(self, entry):
        with self._lock:
            self._entries.append(entry)

    def answer(self, method):
        """The JSON body for GET (or DELETE, which clears it first) of LOG_PATH."""
        with self._lock:
            if method == "DELETE":
                self._entries.clear()
            return json.dumps(self._entries).encode()
