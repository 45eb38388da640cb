"""WSGI middleware in front of moto: the control endpoint, the call log, injected latency
and faults, and the reset hook.

Every request signed with SigV4 is named ``service:Operation`` (service = the signing
name of the credential scope; operation from X-Amz-Target, the query ``Action``, or the
REST route in botocore's model). moto's own endpoints (/moto-api) and ours (/_localaws)
are unsigned and never logged, delayed or failed.

Injected errors use each protocol's own shape so that an SDK classifies them as AWS's:
a throttle is retried with backoff as a throttling error, a 500 as a transient one.
"""
from __future__ import annotations

import io
import json
import re
import threading
import time
import uuid
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

import botocore.session

from . import invoke
from .state import CONFIG, LOCK, ConfigError, on_reset, reset_all

StartResponse = Callable[..., Any]

_CALLS: list[dict[str, Any]] = []


@on_reset
def _reset_calls() -> None:
    _CALLS.clear()


# --- naming the operation ---

_SIGNING_TO_MODEL = {"monitoring": "cloudwatch", "email": "ses", "execute-api": "apigateway",
                     "states": "stepfunctions", "events": "events"}
_session = botocore.session.get_session()
_routes: dict[str, list[tuple[str, re.Pattern[str], list[str], int, str]]] = {}
_models: dict[str, Any] = {}
_models_lock = threading.Lock()


def _model(service: str) -> Any:
    with _models_lock:
        if service not in _models:
            try:
                _models[service] = _session.get_service_model(_SIGNING_TO_MODEL.get(service, service))
            except Exception:  # noqa: BLE001 - unknown service: unnamed operations
                _models[service] = None
        return _models[service]


def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], list[str], int, str]]:
    """(method, path regex, required query keys, literal length, operation) per operation."""
    if service in _routes:
        return _routes[service]
    routes = []
    model = _model(service)
    for op in (model.operation_names if model else []):
        http = model.operation_model(op).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(path))
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        keys = [q.split("=")[0] for q in query.split("&") if q]
        literal = len(re.sub(r"\{[^}]+\}", "", path))
        routes.append((http.get("method", "POST"), re.compile(f"^{pattern}/?$"), keys, literal, op))
    routes.sort(key=lambda r: -r[3])
    _routes[service] = routes
    return routes


def name_operation(environ: dict[str, Any], body: bytes) -> tuple[str, str] | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request", auth)
    if not m:
        return None
    service = m.group(1)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return service, target.split(".")[-1]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded") and body:
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:
            return service, action[0]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return service, query["Action"][0]
    method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
    for route_method, regex, keys, _, op in _rest_routes(service):
        if route_method == method and regex.match(path) and all(k in query for k in keys):
            return service, op
    return service, "Unknown"


# --- injected errors, per protocol ---

def _xml(code: str, message: str, *, ec2: bool, sender: bool) -> bytes:
    rid = str(uuid.uuid4())
    if ec2:
        return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></Errors><RequestID>{rid}</RequestID></Response>").encode()
    kind = "Sender" if sender else "Receiver"
    return (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{rid}</RequestId></ErrorResponse>").encode()


def fault_response(service: str, kind: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """(status line, headers, body) of an injected 'throttle' or 'error'."""
    model = _model(service)
    protocol = (model.metadata.get("protocol") if model else None) or "json"
    throttle = kind == "throttle"
    error_500 = "500 Internal Server Error"
    if protocol == "ec2":
        code, status = ("RequestLimitExceeded", "503 Service Unavailable") if throttle else ("InternalError", error_500)
        return status, [("Content-Type", "text/xml")], _xml(code, "Injected by localaws.", ec2=True, sender=throttle)
    if protocol == "query":
        if throttle:
            code, status = "Throttling", "400 Bad Request"
        else:  # IAM models its 500 as ServiceFailure
            code, status = ("ServiceFailure" if service == "iam" else "InternalFailure"), "500 Internal Server Error"
        return status, [("Content-Type", "text/xml")], _xml(code, "Injected by localaws.", ec2=False, sender=throttle)
    if protocol == "rest-xml":
        code, status = ("SlowDown", "503 Slow Down") if throttle else ("InternalError", "500 Internal Server Error")
        body = f"<Error><Code>{code}</Code><Message>Injected by localaws.</Message><RequestId>{uuid.uuid4()}</RequestId></Error>"
        return status, [("Content-Type", "application/xml")], body.encode()
    # JSON protocols (json, rest-json)
    if service == "lambda":
        if throttle:
            code, status = "TooManyRequestsException", "429 Too Many Requests"
            body = {"Type": "User", "message": "Rate exceeded (injected by localaws).", "Reason": "CallerRateLimitExceeded"}
        else:
            code, status = "ServiceException", "500 Internal Server Error"
            body = {"Type": "Service", "Message": "Injected by localaws."}
    elif service == "xray":
        code, status = ("ThrottledException", "429 Too Many Requests") if throttle else ("InternalFailure", error_500)
        body = {"message": "Injected by localaws."}
    else:
        code, status = ("ThrottlingException", "400 Bad Request") if throttle else ("InternalFailure", error_500)
        body = {"__type": code, "message": "Injected by localaws."}
    headers = [("Content-Type", "application/x-amz-json-1.1" if protocol == "json" else "application/json"),
               ("x-amzn-errortype", code)]
    if throttle:
        headers.append(("Retry-After", "1"))
    return status, headers, json.dumps(body).encode()


def _matches(op: str, patterns: Iterable[str]) -> bool:
    service = op.split(":", 1)[0]
    return any(p in (op, f"{service}:*", "*") for p in patterns)


def _latency_for(op: str) -> float:
    latency = CONFIG["latency_s"]
    service = op.split(":", 1)[0]
    for key in (op, f"{service}:*", "*"):
        if key in latency:
            return float(latency[key])
    return 0.0


def _pick_fault(op: str) -> str | None:
    with LOCK:
        fault = CONFIG["fault"]
        if not (fault["throttle_rate"] or fault["error_rate"]):
            return None
        if fault["operations"] and not _matches(op, fault["operations"]):
            return None
        if fault["max_faults"] is not None and CONFIG.faults_injected >= fault["max_faults"]:
            return None
        roll = CONFIG.rng.random()
        if roll < fault["throttle_rate"]:
            kind = "throttle"
        elif roll < fault["throttle_rate"] + fault["error_rate"]:
            kind = "error"
        else:
            return None
        CONFIG.faults_injected += 1
        return kind


# --- the control endpoint ---

def _json_response(start_response: StartResponse, status: str, doc: Any) -> list[bytes]:
    body = json.dumps(doc, indent=1).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def control(environ: dict[str, Any], start_response: StartResponse, body: bytes) -> list[bytes]:
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "").rstrip("/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/_localaws/health":
        return _json_response(start_response, "200 OK", {"status": "ok"})
    if path == "/_localaws/config":
        if method == "GET":
            return _json_response(start_response, "200 OK", CONFIG.as_dict())
        if method in ("POST", "PUT", "PATCH"):
            try:
                CONFIG.update(json.loads(body or b"{}"))
            except (ConfigError, ValueError) as err:
                return _json_response(start_response, "400 Bad Request", {"error": str(err)})
            return _json_response(start_response, "200 OK", CONFIG.as_dict())
        if method == "DELETE":
            CONFIG.reset()
            return _json_response(start_response, "200 OK", CONFIG.as_dict())
    if path == "/_localaws/calls":
        if method == "GET":
            with LOCK:
                calls = list(_CALLS)
            if query.get("detail", ["0"])[0] in ("1", "true"):
                return _json_response(start_response, "200 OK", {"calls": calls})
            return _json_response(start_response, "200 OK", {"calls": [c["op"] for c in calls]})
        if method == "DELETE":
            _reset_calls()
            return _json_response(start_response, "200 OK", {"calls": []})
    if path == "/_localaws/environments" and method == "GET":
        return _json_response(start_response, "200 OK", {"pools": invoke.environments_snapshot()})
    if path == "/_localaws/reset" and method == "POST":
        reset_all()
        return _json_response(start_response, "200 OK", {"reset": True})
    return _json_response(start_response, "404 Not Found", {"error": f"no such control endpoint: {method} {path}"})


_JSON_CONTENT_SERVICES = {"lambda", "xray"}


class LocalAwsMiddleware:
    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = self._buffer_body(environ)
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_localaws"):
            return control(environ, start_response, body)
        if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            # moto resets its backends; we reset ours (including the knobs) with them.
            out = self.app(environ, start_response)
            reset_all()
            return out
        named = name_operation(environ, body)
        if named is None:
            return self.app(environ, start_response)
        service, operation = named
        op = f"{service}:{operation}"
        entry: dict[str, Any] = {"op": op, "t": time.time(), "status": None, "injected": None}
        with LOCK:
            _CALLS.append(entry)
        delay = _latency_for(op)
        if delay:
            time.sleep(delay)
        kind = _pick_fault(op)
        if kind:
            status, headers, payload = fault_response(service, kind)
            entry.update(status=int(status.split()[0]), injected=kind)
            start_response(status, headers + [("Content-Length", str(len(payload))),
                                              ("x-amzn-RequestId", str(uuid.uuid4()))])
            return [payload]

        json_service = service in _JSON_CONTENT_SERVICES

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            entry["status"] = int(status.split()[0])
            if json_service:
                # moto's Lambda/X-Ray handlers leave Flask's text/html default.
                headers = [(k, "application/json") if k.lower() == "content-type" and v.startswith("text/html")
                           else (k, v) for k, v in headers]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.app(environ, recording_start_response)

    @staticmethod
    def _buffer_body(environ: dict[str, Any]) -> bytes:
        """Read the body once (to name the operation) and hand moto a fresh stream."""
        stream = environ.get("wsgi.input")
        if stream is None:
            return b""
        length = environ.get("CONTENT_LENGTH")
        if length:
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            body = stream.read()
            environ["CONTENT_LENGTH"] = str(len(body))
        else:
            body = b""
        environ["wsgi.input"] = io.BytesIO(body)
        return body

