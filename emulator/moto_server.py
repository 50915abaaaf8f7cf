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
import hashlib
import http
import io
import json
import os
import signal
import socket
import threading
import time

os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.iam import access_control  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from cbor_protocol import CborAsJson  # noqa: E402
from faults import FAULTS_PATH, Faults  # noqa: E402
from lifetime import end_with_stdin  # noqa: E402
from request_log import LOG_PATH, RequestLog, describe  # noqa: E402


def treat_requests_as_tls():
    """Evaluate policies as if every request came over TLS.

    The emulator listens on plain HTTP on loopback, standing in for AWS's HTTPS
    endpoints. moto does not evaluate Bool conditions, so a statement that denies
    requests with aws:SecureTransport = false (as the state bucket's policy does)
    would deny everything; here such a statement does not apply, as on AWS over TLS.
    """
    original = access_control.IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        condition = self._statement.get("Condition") or {}
        secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
        if secure is not None and str(secure).lower() == "false":
            return access_control.PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    access_control.IAMPolicyStatement.is_action_permitted = is_action_permitted


def number_versions_as_aws():
    """Number a function's published versions as Lambda does: never reused.

    moto 5 numbers a new version len(versions) + 1, so once old versions are
    deleted (the deployer prunes beyond keep_versions) a new one takes the
    number of one still published. Lambda numbers each new version one above
    the highest it ever published for the function.
    """
    from moto.awslambda import models

    original = models.LambdaStorage.publish_version

    def publish_version(self, name_or_arn, description=""):
        group_before = None
        try:
            function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
            group_before = self._functions.get(function.function_name)
        except Exception:  # moto answers the error itself below
            pass
        count = len(group_before["versions"]) if group_before else 0
        published = original(self, name_or_arn, description)
        if published is None or group_before is None:
            return published
        group = self._functions[published.function_name]
        highest = group.get("highest_version", count)
        if len(group["versions"]) > count and int(published.version) <= highest:
            clashing = published.function_arn
            published.set_version(highest + 1)
            self._arns[published.function_arn] = published
            for version in group["versions"]:
                if version is not published and version.function_arn == clashing:
                    self._arns[clashing] = version
        group["highest_version"] = max(highest, int(published.version))
        return published

    models.LambdaStorage.publish_version = publish_version


def update_stage_as_aws():
    """Answer API Gateway v2 UpdateStage, which moto 5 lacks (it answers 500).

    PATCH /v2/apis/{apiId}/stages/{stageName} changes the fields it names, as
    API Gateway does: auto-deploy, default route settings (throttling), access
    log settings, description, stage variables and route settings.
    """
    import json
    from datetime import datetime
    from urllib.parse import unquote

    from moto.apigatewayv2.responses import ApiGatewayV2Response

    def update_stage(self):
        parts = self.path.split("/")
        api_id, stage_name = parts[-3], unquote(parts[-1])
        stage = self.apigatewayv2_backend.get_stage(api_id, stage_name)
        config = json.loads(self.body or "{}")
        if "autoDeploy" in config:
            stage.auto_deploy = config["autoDeploy"]
        if "defaultRouteSettings" in config:
            stage.default_route_settings = {**(stage.default_route_settings or {}), **config["defaultRouteSettings"]}
        if "accessLogSettings" in config:
            stage.access_log_settings = config["accessLogSettings"]
        if "description" in config:
            stage.description = config["description"]
        if "stageVariables" in config:
            stage.stage_variables = config["stageVariables"]
        if "routeSettings" in config:
            stage.route_settings = config["routeSettings"]
        stage.updated = datetime.now()
        return 200, {}, json.dumps(stage.to_json())

    ApiGatewayV2Response.update_stage = update_stage


def list_authorizers_as_aws():
    """Answer API Gateway v2 GetAuthorizers, which moto 5 lacks.

    GET /v2/apis/{apiId}/authorizers lists the API's authorizers, as API
    Gateway does (moto has CreateAuthorizer, GetAuthorizer and the rest).
    """
    import json

    from moto.apigatewayv2.responses import ApiGatewayV2Response

    def get_authorizers(self):
        api_id = self.path.rstrip("/").split("/")[-2]
        api = self.apigatewayv2_backend.get_api(api_id)
        return 200, {}, json.dumps({"items": [authorizer.to_json() for authorizer in api.authorizers.values()]})

    ApiGatewayV2Response.get_authorizers = get_authorizers


class OneRequestAtATime:
    """WSGI middleware: the whole request, body iteration included, runs under one lock.

    It also keeps a log of the requests served, read with GET /_emulator/requests
    and cleared with DELETE /_emulator/requests, so tests can assert which calls a
    run made (for example: no mutating call on a rerun).
    """

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.log = RequestLog()
        self.faults = Faults()
        self.tokens = RequestTokens()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > 0:
            body = environ["wsgi.input"].read(length)
        elif environ.get("wsgi.input_terminated"):
            body = environ["wsgi.input"].read()
        else:
            body = b""
        if environ.get("PATH_INFO") in (LOG_PATH, FAULTS_PATH):
            if environ.get("PATH_INFO") == LOG_PATH:
                payload = self.log.answer(environ.get("REQUEST_METHOD"))
            else:
                payload = self.faults.answer(environ.get("REQUEST_METHOD"), body)
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
            return [payload]
        environ["wsgi.input"] = io.BytesIO(body)
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
        request = describe(
            environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), headers, body
        )
        delay = self.faults.latency(request.get("service"))
        if delay:
            time.sleep(delay)
        with self.lock:
            self.log.append(request)
            fault = self.faults.decide(request, body)
            if fault == "reset":
                connection = environ.get("werkzeug.socket")
                if connection is not None:
                    try:
                        connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                start_response("500 Internal Server Error", [("Content-Length", "0")])
                return [b""]
            if fault is not None:
                status, fault_headers, payload = fault
                fault_headers = fault_headers + [("Content-Length", str(len(payload)))]
                start_response(f"{status} {http.HTTPStatus(status).phrase}", fault_headers)
                return [payload]
            token_key = self.tokens.key(headers, body)
            replayed = self.tokens.replay(token_key)
            if replayed is not None:
                status, replay_headers, payload = replayed
                start_response(f"{status} {http.HTTPStatus(status).phrase}", replay_headers)
                return [payload]
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
            status = int(captured["status"].split(" ", 1)[0])
            payload = self.faults.observe(request, body, status, payload)
            self.tokens.remember(token_key, status, captured["headers"], payload)
        fixed = compatible(environ, payload)
        headers = captured["headers"]
        if fixed is not payload or any(
            k.lower() == "content-length" and v != str(len(fixed)) for k, v in headers
        ):
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(fixed))))
        start_response(captured["status"], headers)
        return [fixed]


class RequestTokens:
    """DynamoDB's idempotent transactions, which moto lacks: a TransactWriteItems
    sent again with the ClientRequestToken of one that succeeded within the last
    10 minutes answers as that one did and changes nothing (an SDK's retry of an
    attempt that timed out after it was applied); the same token with another
    request is refused with IdempotentParameterMismatchException.
    """

    LIFETIME_S = 600

    def __init__(self):
        # token -> (when, request digest, answer), oldest first (insertion order).
        self.seen = {}

    @staticmethod
    def key(headers, body):
        """(token, digest of the request) of a TransactWriteItems with a token, else None."""
        if not headers.get("x-amz-target", "").endswith(".TransactWriteItems"):
            return None
        try:
            token = json.loads(body).get("ClientRequestToken")
        except (ValueError, AttributeError):
            return None
        return None if token is None else (token, hashlib.sha256(body).hexdigest())

    def replay(self, key):
        if key is None:
            return None
        now = time.monotonic()
        # Forget expired tokens from the oldest on: each is looked at once.
        while self.seen:
            oldest = next(iter(self.seen))
            if now - self.seen[oldest][0] < self.LIFETIME_S:
                break
            del self.seen[oldest]
        token, digest = key
        if token not in self.seen:
            return None
        _, seen_digest, answer = self.seen[token]
        if digest != seen_digest:
            payload = json.dumps({
                "__type": "com.amazonaws.dynamodb.v20120810#IdempotentParameterMismatchException",
                "message": "The request uses the same client token as a previous, but non-identical request.",
            }).encode()
            return 400, [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(payload)))], payload
        return answer

    def remember(self, key, status, response_headers, payload):
        if key is not None and status == 200:
            token, digest = key
            self.seen[token] = (time.monotonic(), digest, (status, response_headers, payload))


def cheap_transaction_backups():
    """Back up only what a DynamoDB transaction can change, not whole tables.

    moto deep-copies every table a TransactWriteItems names before applying it,
    to roll back when one of its items is refused: the cost of each transaction
    grows with the table (a class of 600 users takes tens of milliseconds a
    transaction, and the copies swell the process). Requests here run one at a
    time, so the backup need only keep the items the transaction names: each
    table's item index is copied shallowly (pointers), and those items deeply.
    The rollback restores exactly what moto's did.
    """
    import copy
    from collections import defaultdict

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        touched = {}
        for entry in transact_items:
            if len(entry) != 1:
                continue
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in key:
                continue
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (
                DynamoType(key[table.range_key_attr])
                if table.range_key_attr and table.range_key_attr in key
                else None
            )
            touched.setdefault(op["TableName"], []).append((hash_value, range_value))

        real_deepcopy = copy.deepcopy

        def backup(table, memo=None):
            name = getattr(table, "name", None)
            if name is None or self.tables.get(name) is not table:
                return real_deepcopy(table, memo)
            saved = copy.copy(table)
            if table.has_range_key:
                saved.items = defaultdict(dict, {h: dict(r) for h, r in table.items.items()})
            else:
                saved.items = defaultdict(dict, dict(table.items))
            for hash_value, range_value in touched.get(table.name, []):
                if table.has_range_key:
                    item = table.items.get(hash_value, {}).get(range_value)
                    if item is not None:
                        saved.items[hash_value][range_value] = real_deepcopy(item)
                elif hash_value in table.items:
                    saved.items[hash_value] = real_deepcopy(table.items[hash_value])
            return saved

        copy.deepcopy = backup
        try:
            return original(self, transact_items)
        finally:
            copy.deepcopy = real_deepcopy

    DynamoDBBackend.transact_write_items = transact_write_items


def compatible(environ, payload):
    """Fix moto responses that strict AWS SDKs (the Rust SDK) cannot parse.

    moto 5.2 answers S3 GetBucketVersioning with a <GetBucketVersioningResponse>
    root element; S3 (and the SDK's model) use <VersioningConfiguration>.
    """
    query = environ.get("QUERY_STRING", "").split("&")
    if environ.get("REQUEST_METHOD") == "GET" and "versioning" in query and b"GetBucketVersioningResponse" in payload:
        return payload.replace(b"GetBucketVersioningResponse", b"VersioningConfiguration")
    return payload


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

    treat_requests_as_tls()
    number_versions_as_aws()
    update_stage_as_aws()
    list_authorizers_as_aws()
    cheap_transaction_backups()
    app = CborAsJson(OneRequestAtATime(DomainDispatcherApplication(create_backend_app)))
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
        end_with_stdin()

    print(f"READY http://{args.host}:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
