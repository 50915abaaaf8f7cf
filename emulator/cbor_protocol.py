"""Serve Smithy RPC v2 CBOR requests with moto's JSON protocol handlers.

The AWS SDK for Rust calls CloudWatch (monitoring) with the Smithy RPC v2 CBOR
protocol: POST /service/<ServiceName>/operation/<Operation>, header
`smithy-protocol: rpc-v2-cbor`, a CBOR body. moto 5.2 answers CloudWatch's JSON
protocol (the same operations, `X-Amz-Target: <ServiceName>.<Operation>`, a
JSON body) but not CBOR, and 404s the path. This WSGI middleware turns such a
request into the JSON-protocol request, lets moto (and the request log, and the
fault injection) serve that, and encodes the answer back as CBOR. Timestamps
are typed in CBOR (tag 1) but plain numbers in JSON, so the operation's output
shape in botocore's model (the same model moto answers from) says which
numbers to tag. Errors keep their status and their `__type`.
"""

import datetime
import io
import json
import re

import botocore.session
import cbor2

OPERATION_PATH = re.compile(r"^/service/(?P<service>[A-Za-z0-9_]+)/operation/(?P<operation>[A-Za-z0-9]+)$")

# The botocore service name for each Smithy service name the SDK sends.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


def _to_json(value):
    """A decoded CBOR value as JSON: timestamps as epoch seconds, bytes as text."""
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _typed(value, shape):
    """A JSON value with the timestamps of `shape` as datetimes (CBOR tag 1)."""
    if shape is None or value is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {key: _typed(item, shape.members.get(key)) for key, item in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_typed(item, shape.member) for item in value]
    if shape.type_name == "map" and isinstance(value, dict):
        return {key: _typed(item, shape.value) for key, item in value.items()}
    if shape.type_name == "timestamp" and isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, tz=datetime.timezone.utc)
    if shape.type_name in ("double", "float") and isinstance(value, int):
        return float(value)
    return value


class CborAsJson:
    """WSGI middleware: Smithy RPC v2 CBOR in and out, moto's JSON protocol inside."""

    def __init__(self, app):
        self.app = app
        self.models = {}

    def _operation(self, service, operation):
        name = SERVICES.get(service)
        if name is None:
            return None
        if name not in self.models:
            self.models[name] = botocore.session.get_session().get_service_model(name)
        try:
            return self.models[name].operation_model(operation)
        except Exception:  # botocore raises OperationNotFoundError
            return None

    def __call__(self, environ, start_response):
        match = OPERATION_PATH.match(environ.get("PATH_INFO", ""))
        if not match or "cbor" not in environ.get("HTTP_SMITHY_PROTOCOL", ""):
            return self.app(environ, start_response)
        service, operation = match.group("service"), match.group("operation")
        model = self._operation(service, operation)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        request = cbor2.loads(raw) if raw else {}
        body = json.dumps(_to_json(request or {})).encode()
        environ = dict(environ)
        environ.update(
            {
                "PATH_INFO": "/",
                "REQUEST_METHOD": "POST",
                "CONTENT_TYPE": "application/x-amz-json-1.0",
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_X_AMZ_TARGET": f"{service}.{operation}",
                "wsgi.input": io.BytesIO(body),
            }
        )
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        result = self.app(environ, capture)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status = captured["status"]
        try:
            answer = json.loads(payload) if payload.strip() else {}
        except ValueError:
            answer = {"__type": "InternalFailure", "message": payload.decode("utf-8", "replace")}
        if status.startswith("2"):
            answer = _typed(answer, model.output_shape if model is not None else None)
        else:
            error = dict(captured["headers"]).get("x-amzn-ErrorType") or answer.get("__type") or "InternalFailure"
            answer = {"__type": error.split(":", 1)[0], "message": answer.get("message") or answer.get("Message", "")}
        encoded = cbor2.dumps(answer, datetime_as_timestamp=True)
        start_response(
            status,
            [
                ("Content-Type", "application/cbor"),
                ("smithy-protocol", "rpc-v2-cbor"),
                ("Content-Length", str(len(encoded))),
            ],
        )
        return [encoded]
