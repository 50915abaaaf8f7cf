"""Faults and AWS behaviours the emulators do not have, injected at run time.

A test (or a person) configures them with POST /_emulator/faults (JSON, below),
reads what was injected with GET /_emulator/faults, and turns everything off
with DELETE /_emulator/faults. Everything is off until configured.

    {
      "seed": 7,                               # the random draw is reproducible
      "rules": [                               # random errors, per service and operation
        {"service": "iam", "operation": "CreateRole", "probability": 0.1,
         "kinds": ["throttle", "server_error", "reset"], "limit": 100}
      ],                                       # operation omitted: every operation of the service
      "latency_ms": {"*": 5, "dynamodb": 20},  # added before a request is served
      "models": {
        "transaction_window_ms": 15,           # DynamoDB transaction conflicts
        "iam_propagation_s": 5,                # a new role is not assumable by Lambda yet
        "lambda_update_s": 2,                  # Lambda Pending / InProgress
        "gsi_creating_s": 3,                   # a new index stays CREATING
        "table_restoring_s": 60                # a table restored from a backup stays CREATING
      }
    }

What each error and model follows (AWS's documentation):
- Errors are the ones each service returns, in its protocol's shape:
  throttling (DynamoDB and CloudWatch Logs `ThrottlingException`, Lambda and
  API Gateway `TooManyRequestsException` 429, IAM and STS `Throttling`, S3
  `SlowDown` 503), server errors (DynamoDB `InternalServerError`, Lambda
  `ServiceException`, IAM `ServiceFailure`, S3 `InternalError`, ...), and a
  connection closed before any answer ("reset").
- Transactions (DynamoDB developer guide, "Transaction conflict handling";
  TransactWriteItems and TransactionCanceledException API pages): an item that a
  committed transaction wrote stays in flight for the window. Another
  TransactWriteItems touching it is cancelled with `TransactionCanceledException`
  and reason `TransactionConflict` for that item; a PutItem, UpdateItem or
  DeleteItem on it gets `TransactionConflictException`.
- IAM propagation (IAM user guide, "Changes that I make are not always
  immediately visible"; Lambda CreateFunction): for N seconds after CreateRole,
  Lambda CreateFunction and UpdateFunctionConfiguration with that role answer
  `InvalidParameterValueException` "The role defined for the function cannot be
  assumed by Lambda."
- Lambda states (Lambda developer guide, "Lambda function states"): for N
  seconds after CreateFunction the function is `State: Pending`; after an update
  of its code or configuration, `LastUpdateStatus: InProgress`. Meanwhile another
  update (or PublishVersion) answers `ResourceConflictException` 409.
- Index creation (DynamoDB UpdateTable, "Adding a global secondary index"): a new
  index is `IndexStatus: CREATING` for N seconds.
- Restores (DynamoDB RestoreTableFromBackup: "the table is being restored" and
  stays `CREATING` until it is ready, minutes per GB): for N seconds after the
  call, DescribeTable of the target table answers `TableStatus: CREATING`.

Counters say what was injected: {"injected": {"iam CreateRole throttle": 3, ...}}.
"""

import json
import random
import re
import threading
import time
import urllib.parse

FAULTS_PATH = "/_emulator/faults"


def operation_of(request):
    """The operation a described request names, for matching: the JSON target's
    or the query Action's name, else `METHOD /path` with ids left out."""
    target = request.get("target")
    if target:
        return target.rsplit(".", 1)[-1]
    if request.get("action"):
        return request["action"]
    return f"{request.get('method', '')} {request.get('path', '')}"


# Each service's protocol decides the error's shape.
JSON_SERVICES = {"dynamodb": "com.amazonaws.dynamodb.v20120810", "logs": "Logs_20140328"}
REST_JSON_SERVICES = {"lambda", "apigateway", "execute-api"}
QUERY_SERVICES = {"iam", "sts"}

ERRORS = {
    # service: {kind: (status, code)}
    "dynamodb": {"throttle": (400, "ThrottlingException"), "server_error": (500, "InternalServerError")},
    "logs": {"throttle": (400, "ThrottlingException"), "server_error": (500, "ServiceUnavailableException")},
    "lambda": {"throttle": (429, "TooManyRequestsException"), "server_error": (500, "ServiceException")},
    "apigateway": {"throttle": (429, "TooManyRequestsException"), "server_error": (503, "ServiceUnavailableException")},
    "iam": {"throttle": (400, "Throttling"), "server_error": (500, "ServiceFailure")},
    "sts": {"throttle": (400, "Throttling"), "server_error": (500, "InternalFailure")},
    "s3": {"throttle": (503, "SlowDown"), "server_error": (500, "InternalError")},
}


def error_response(service, status, code, message, extra=None):
    """(status, headers, body) of `code` as `service` answers it."""
    request_id = "%032x" % random.getrandbits(128)
    if service in JSON_SERVICES:
        body = {"__type": f"{JSON_SERVICES[service]}#{code}", "message": message}
        body.update(extra or {})
        content_type = "application/x-amz-json-1.0" if service == "dynamodb" else "application/x-amz-json-1.1"
        return status, [("Content-Type", content_type), ("x-amzn-RequestId", request_id)], json.dumps(body).encode()
    if service in REST_JSON_SERVICES:
        body = {"Type": "User" if status < 500 else "Service", "message": message}
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", request_id)]
        return status, headers, json.dumps(body).encode()
    if service in QUERY_SERVICES:
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml")], body.encode()
    body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
    return status, [("Content-Type", "application/xml")], body.encode()


class Faults:
    """The configured faults and models, and what they injected. Thread-safe."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self.config = {}
            self.random = random.Random(0)
            self.injected = {}
            self.limits = {}
            self.in_flight = {}  # (table, key) -> until
            self.roles = {}  # role name -> assumable from
            self.functions = {}  # function name -> (pending until, in progress until)
            self.indexes = {}  # (table, index) -> creating until
            self.restoring = {}  # table -> creating until

    # -- configuration ---------------------------------------------------

    def answer(self, method, body):
        """The JSON body for GET / POST / DELETE of FAULTS_PATH."""
        if method == "DELETE":
            self.reset()
        elif method == "POST":
            config = json.loads(body or b"{}")
            self.reset()
            with self._lock:
                self.config = config
                self.random = random.Random(config.get("seed", 0))
        with self._lock:
            return json.dumps({"config": self.config, "injected": self.injected}).encode()

    def _count(self, what):
        self.injected[what] = self.injected.get(what, 0) + 1

    def _model(self, name):
        return float((self.config.get("models") or {}).get(name) or 0)

    # -- before a request is served ---------------------------------------

    def latency(self, service):
        latency = self.config.get("latency_ms") or {}
        return float(latency.get(service, latency.get("*", 0))) / 1000.0

    def decide(self, request, body):
        """A fault for this request: None, "reset", or (status, headers, body)."""
        service = request.get("service")
        if not service or not self.config:
            return None
        operation = operation_of(request)
        now = time.monotonic()
        with self._lock:
            modelled = self._modelled(service, operation, request, body, now)
            if modelled is not None:
                return modelled
            for index, rule in enumerate(self.config.get("rules") or []):
                if rule.get("service") not in (service, "*"):
                    continue
                wanted = rule.get("operation")
                if wanted and wanted != operation and not operation.startswith(wanted):
                    continue
                limit = rule.get("limit")
                if limit is not None and self.limits.get(index, 0) >= limit:
                    continue
                if self.random.random() >= float(rule.get("probability", 0)):
                    continue
                kinds = rule.get("kinds") or ["throttle", "server_error"]
                kind = self.random.choice(kinds)
                self.limits[index] = self.limits.get(index, 0) + 1
                self._count(f"{service} {operation} {kind}")
                if kind == "reset":
                    return "reset"
                status, code = ERRORS.get(service, ERRORS["s3"])[kind]
                message = "Rate exceeded" if kind == "throttle" else "We encountered an internal error. Please try again."
                return error_response(service, status, code, message)
        return None

    def _modelled(self, service, operation, request, body, now):
        if service == "dynamodb":
            return self._transaction_conflict(operation, request, body, now)
        if service == "lambda":
            return self._lambda_refusal(operation, request, body, now)
        return None

    def _keys(self, request, body):
        """The (table, key) items a DynamoDB write names."""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return []
        operation = operation_of(request)
        if operation == "TransactWriteItems":
            keys = []
            for entry in document.get("TransactItems") or []:
                for kind, part in entry.items():
                    keys.append(_item_key(part, kind))
            return [key for key in keys if key]
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            key = _item_key(document, "Put" if operation == "PutItem" else "Update")
            return [key] if key else []
        return []

    def _transaction_conflict(self, operation, request, body, now):
        window = self._model("transaction_window_ms") / 1000.0
        if not window or operation not in ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem"):
            return None
        keys = self._keys(request, body)
        busy = [key in self.in_flight and self.in_flight[key] > now for key in keys]
        if not any(busy):
            return None
        if operation == "TransactWriteItems":
            self._count("dynamodb TransactWriteItems TransactionConflict")
            reasons = [
                {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
                if conflict
                else {"Code": "None"}
                for conflict in busy
            ]
            codes = ", ".join(reason["Code"] for reason in reasons)
            return error_response(
                "dynamodb",
                400,
                "TransactionCanceledException",
                f"Transaction cancelled, please refer cancellation reasons for specific reasons [{codes}]",
                {"CancellationReasons": reasons},
            )
        self._count(f"dynamodb {operation} TransactionConflictException")
        return error_response("dynamodb", 400, "TransactionConflictException", "Transaction is ongoing for the item")

    def _lambda_refusal(self, operation, request, body, now):
        name = _function_name(request.get("path", ""))
        is_update = request.get("method") == "PUT" and request.get("path", "").endswith(("/code", "/configuration"))
        is_publish = request.get("method") == "POST" and request.get("path", "").endswith("/versions")
        is_create = request.get("method") == "POST" and request.get("path", "").rstrip("/").endswith("/functions")
        if (is_update or is_publish) and name in self.functions:
            pending, in_progress = self.functions[name]
            if now < max(pending, in_progress):
                self._count(f"lambda {operation} ResourceConflictException")
                return error_response(
                    "lambda",
                    409,
                    "ResourceConflictException",
                    f"The operation cannot be performed at this time. An update is in progress for resource: {name}",
                )
        if (is_create or (is_update and request.get("path", "").endswith("/configuration"))) and self.roles:
            try:
                role = (json.loads(body or b"{}").get("Role") or "").rsplit("/", 1)[-1]
            except ValueError:
                role = ""
            if role in self.roles and now < self.roles[role]:
                self._count("lambda CreateFunction role not assumable yet")
                return error_response(
                    "lambda",
                    400,
                    "InvalidParameterValueException",
                    "The role defined for the function cannot be assumed by Lambda.",
                )
        return None

    # -- after a request was served ---------------------------------------

    def observe(self, request, body, status, payload):
        """Remember what the models need from a served request; return the
        payload, rewritten where a model says AWS would answer otherwise."""
        if not self.config or not request.get("service"):
            return payload
        operation = operation_of(request)
        now = time.monotonic()
        service = request["service"]
        with self._lock:
            if status < 300:
                self._remember(service, operation, request, body, now)
            if status == 200 and service == "lambda" and request.get("method") == "GET":
                return self._function_state(request, payload, now)
            if status == 200 and service == "dynamodb" and operation == "DescribeTable":
                return self._table_status(payload, now)
        return payload

    def _remember(self, service, operation, request, body, now):
        if service == "dynamodb" and operation == "TransactWriteItems":
            window = self._model("transaction_window_ms") / 1000.0
            for key in self._keys(request, body):
                self.in_flight[key] = now + window
            if len(self.in_flight) > 10_000:
                self.in_flight = {key: until for key, until in self.in_flight.items() if until > now}
        elif service == "iam" and operation == "CreateRole":
            seconds = self._model("iam_propagation_s")
            form = urllib.parse.parse_qs((body or b"").decode("utf-8", "replace"))
            name = (form.get("RoleName") or [""])[0]
            if seconds and name:
                self.roles[name] = now + seconds
        elif service == "lambda":
            seconds = self._model("lambda_update_s")
            if not seconds:
                return
            path = request.get("path", "")
            if request.get("method") == "POST" and path.rstrip("/").endswith("/functions"):
                try:
                    name = json.loads(body or b"{}").get("FunctionName", "")
                except ValueError:
                    name = ""
                self.functions[name] = (now + seconds, 0.0)
            elif request.get("method") == "PUT" and path.endswith(("/code", "/configuration")):
                name = _function_name(path)
                pending, _ = self.functions.get(name, (0.0, 0.0))
                self.functions[name] = (pending, now + seconds)
        elif service == "dynamodb" and operation == "UpdateTable":
            seconds = self._model("gsi_creating_s")
            try:
                document = json.loads(body or b"{}")
            except ValueError:
                return
            for update in document.get("GlobalSecondaryIndexUpdates") or []:
                create = update.get("Create")
                if seconds and create:
                    self.indexes[(document.get("TableName"), create.get("IndexName"))] = now + seconds
        elif service == "dynamodb" and operation == "RestoreTableFromBackup":
            seconds = self._model("table_restoring_s")
            try:
                table = json.loads(body or b"{}").get("TargetTableName")
            except ValueError:
                return
            if seconds and table:
                self.restoring[table] = now + seconds

    def _function_state(self, request, payload, now):
        name = _function_name(request.get("path", ""))
        if name not in self.functions:
            return payload
        pending, in_progress = self.functions[name]
        if now >= max(pending, in_progress):
            return payload
        try:
            document = json.loads(payload)
        except ValueError:
            return payload
        configuration = document.get("Configuration", document)
        if now < pending:
            configuration["State"] = "Pending"
            configuration["StateReasonCode"] = "Creating"
            self._count("lambda GetFunction State Pending")
        if now < in_progress:
            configuration["LastUpdateStatus"] = "InProgress"
            self._count("lambda GetFunction LastUpdateStatus InProgress")
        return json.dumps(document).encode()

    def _table_status(self, payload, now):
        """DescribeTable's answer, with a restored table still CREATING and a
        new index still CREATING while their models say so."""
        try:
            document = json.loads(payload)
        except ValueError:
            return payload
        table = document.get("Table") or {}
        changed = False
        until = self.restoring.get(table.get("TableName"))
        if until and now < until:
            table["TableStatus"] = "CREATING"
            self._count("dynamodb DescribeTable TableStatus CREATING")
            changed = True
        creating = False
        for index in table.get("GlobalSecondaryIndexes") or []:
            until = self.indexes.get((table.get("TableName"), index.get("IndexName")))
            if until and now < until:
                index["IndexStatus"] = "CREATING"
                creating = True
        if creating:
            self._count("dynamodb DescribeTable IndexStatus CREATING")
        if not (changed or creating):
            return payload
        return json.dumps(document).encode()


def _function_name(path):
    match = re.match(r"^/20\d\d-\d\d-\d\d/functions/([^/]+)", path)
    if not match:
        return ""
    name = urllib.parse.unquote(match.group(1))
    return name.rsplit(":", 1)[-1] if name.startswith("arn:") else name


def _item_key(part, kind):
    """(table, canonical key) of one write, `Put` ones by their item's key attributes."""
    if not isinstance(part, dict):
        return None
    table = part.get("TableName")
    if kind == "Put":
        item = part.get("Item") or {}
        key = {name: item[name] for name in key_attributes(table) if name in item} if table else {}
    else:
        key = part.get("Key") or {}
    if not table or not key:
        return None
    return table, json.dumps(key, sort_keys=True)


def key_attributes(table):
    """The key attribute names of `table`, from moto's own model."""
    try:
        from moto.dynamodb.models import dynamodb_backends

        for account in dynamodb_backends.values():
            for backend in account.values():
                if table in backend.tables:
                    described = backend.tables[table]
                    return [name for name in (described.hash_key_attr, described.range_key_attr) if name]
    except Exception:  # noqa: BLE001 - outside moto (ministack), fall back to the playground's keys
        pass
    return ["tableId", "username"]
