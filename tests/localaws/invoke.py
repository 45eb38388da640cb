"""Invoke: execution environments, the function's (echo) result, logs and X-Ray segments.

The environment model (README "Execution environments"):

- A default function's version keeps a pool of environments; each serves one invoke at
  a time. An invoke takes a free warm one, else starts a new one: a cold start that
  sleeps ``default_init_ms``, records an ``Initialization`` subsegment and puts
  ``Init Duration`` in the REPORT line. An environment idle longer than
  ``default_env_idle_s`` is reclaimed.
- An LMI version starts its environments when it is published (the applied
  MinExecutionEnvironments, default 3); each serves up to
  PerExecutionEnvironmentMaxConcurrency invokes at once and never records
  Initialization. When all are saturated the invoke gets 429 TooManyRequestsException
  (LMI-FACTS "Throttling"). There is no scale-out beyond the minimum.

The handler's duration comes from the payload: ``{"sleep_ms": N}``; ``{"fail": "msg"}``
makes the handler raise. This models nothing about AWS's real cold starts.
"""
from __future__ import annotations

import base64
import datetime
import json
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from moto.awslambda.utils import make_function_arn

from . import errors, functions, xray
from .functions import LATEST, LATEST_PUBLISHED, is_lmi
from .state import CONFIG, LOCK, now, on_reset

TRACE_ROOT_RE = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")
LOG_TAIL_BYTES = 4096
ASYNC_WAIT_S = 60.0


@dataclass
class Environment:
    id: str
    created: float
    last_used: float
    inflight: int = 0
    invocations: int = 0
    log_stream: str | None = None


@dataclass
class Pool:
    lmi: bool
    envs: list[Environment] = field(default_factory=list)


# (account, region, function name, version) -> pool
_POOLS: dict[tuple[str, str, str, str], Pool] = {}


@on_reset
def _reset() -> None:
    _POOLS.clear()


def _key(fn: Any) -> tuple[str, str, str, str]:
    return (fn.account_id, fn.region, fn.function_name, str(fn.version))


def _new_env() -> Environment:
    t = now()
    return Environment(id=secrets.token_hex(8), created=t, last_used=t)


def retire_pools(account: str, region: str, name: str, version: str | None = None) -> None:
    """Drop the environments of one version, or of every version when ``version`` is None."""
    with LOCK:
        for key in [k for k in _POOLS if k[:3] == (account, region, name)]:
            if version is None or key[3] == version:
                del _POOLS[key]


def ensure_lmi_pool(fn: Any) -> Pool:
    """Grow or shrink an LMI version's pool to its applied MinExecutionEnvironments."""
    with LOCK:
        pool = _POOLS.setdefault(_key(fn), Pool(lmi=True))
        applied, _ = functions.scaling_configs(fn)
        target = int(applied.get("MinExecutionEnvironments", CONFIG["lmi_min_environments"]))
        while len(pool.envs) < target:
            pool.envs.append(_new_env())
        if len(pool.envs) > target:
            busy = [e for e in pool.envs if e.inflight]
            idle = [e for e in pool.envs if not e.inflight]
            pool.envs = busy + idle[: max(0, target - len(busy))]
        return pool


def environments_snapshot() -> list[dict[str, Any]]:
    """For GET /_localaws/environments (debugging and tests)."""
    with LOCK:
        return [
            {"account": k[0], "region": k[1], "function": k[2], "version": k[3], "lmi": p.lmi,
             "environments": [{"id": e.id, "inflight": e.inflight, "invocations": e.invocations,
                               "idle_s": round(now() - e.last_used, 3)} for e in p.envs]}
            for k, p in _POOLS.items()
        ]


def _acquire_default(fn: Any, latest: Any) -> tuple[Environment, bool]:
    pool = _POOLS.setdefault(_key(fn), Pool(lmi=False))
    t = now()
    idle_limit = CONFIG["default_env_idle_s"]
    pool.envs = [e for e in pool.envs if e.inflight or t - e.last_used <= idle_limit]
    free = [e for e in pool.envs if not e.inflight]
    if free:
        env, cold = max(free, key=lambda e: e.last_used), False
    else:
        reserved = getattr(latest, "reserved_concurrency", None)
        if reserved is not None:
            running = sum(e.inflight for k, p in _POOLS.items() if k[:3] == _key(fn)[:3] for e in p.envs)
            if running >= int(reserved):
                raise errors.too_many_requests("Rate Exceeded.", "ReservedFunctionConcurrentInvocationLimitExceeded")
        env, cold = _new_env(), True
        pool.envs.append(env)
    env.inflight += 1
    return env, cold


def _acquire_lmi(fn: Any) -> Environment:
    pool = ensure_lmi_pool(fn)
    capacity = functions.max_concurrency(fn)
    open_envs = [e for e in pool.envs if e.inflight < capacity]
    if not open_envs:
        # LMI-FACTS "Throttling": saturated environments reject with 429; no LMI-specific
        # Reason is modeled, so we use the generic concurrency one.
        raise errors.too_many_requests("Rate Exceeded.", "ConcurrentInvocationLimitExceeded")
    env = min(open_envs, key=lambda e: e.inflight)
    env.inflight += 1
    return env


# --- target resolution (LMI-FACTS; messages from LocalStack's AWS-validated code) ---

def _split_name(raw: str) -> tuple[str, str | None]:
    if raw.startswith("arn:"):
        tail = raw.split(":function:", 1)[-1]
        name, _, qualifier = tail.partition(":")
        return name, qualifier or None
    name, _, qualifier = raw.partition(":")
    return name, qualifier or None


def resolve(backend: Any, account: str, region: str, raw_name: str, qualifier: str | None) -> tuple[Any, Any]:
    """(the version to run, $LATEST) for an invoke, or AWS's error."""
    name, in_name = _split_name(raw_name)
    qualifier = in_name or qualifier
    storage = backend._lambdas
    group = storage._functions.get(name)
    if not group or group["latest"] is None:
        arn = make_function_arn(region, account, name) + (f":{qualifier}" if qualifier else "")
        raise errors.not_found(f"Function not found: {arn}")
    latest = group["latest"]
    if not is_lmi(latest):
        return storage.get_function_by_name_with_qualifier(name, qualifier or LATEST), latest
    latest_published = storage._get_version(name, LATEST_PUBLISHED)
    if qualifier is None:
        if latest_published is None:
            raise _no_published_version()
        target = latest_published
    elif qualifier == LATEST:
        raise _latest_not_invocable() if latest_published is not None else _no_published_version()
    else:
        target = storage.get_function_by_name_with_qualifier(name, qualifier)
        if str(target.version) == LATEST:  # an alias pointing at $LATEST
            raise _latest_not_invocable()
    if functions.version_state(target) == "Pending":
        # AWS's text for invoking a function that is not Active yet.
        raise errors.conflict(
            "The operation cannot be performed at this time. The function is currently in the following state: Pending")
    return target, latest


def _latest_not_invocable() -> errors.LambdaApiError:
    return errors.invalid_parameter(
        "Functions configured with capacity provider configuration can't be invoked with $LATEST qualifier. "
        "To invoke this function, specify a published version qualifier or $LATEST.PUBLISHED.")


def _no_published_version() -> errors.LambdaApiError:
    return errors.no_published_version(
        "The function can't be invoked because no published version exists. For functions with capacity "
        "provider configuration, either publish a version to $LATEST.PUBLISHED, or specify a published "
        "version qualifier.")


# --- trace header ---

@dataclass
class TraceContext:
    root: str
    parent: str | None
    sampled: bool


def parse_trace_header(value: str | None) -> TraceContext:
    """X-Amzn-Trace-Id: Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=1. A missing or
    malformed Root gets a new trace id; Sampled=0 means the caller chose not to record."""
    parts: dict[str, str] = {}
    for item in (value or "").split(";"):
        k, _, v = item.strip().partition("=")
        if k:
            parts[k.strip().lower()] = v.strip()
    root = parts.get("root", "")
    if not TRACE_ROOT_RE.match(root):
        root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return TraceContext(root=root, parent=parts.get("parent") or None, sampled=parts.get("sampled") != "0")


# --- execution ---

@dataclass
class Result:
    payload: bytes
    function_error: str | None
    log: str
    version: str


def _handler_params(payload: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(payload or b"{}")
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def execute(backend: Any, fn: Any, latest: Any, payload: bytes, trace: TraceContext, *, wait: bool = False) -> Result:
    request_id = str(uuid.uuid4())
    t_received = time.time()
    params = _handler_params(payload)
    lmi = is_lmi(fn)
    deadline = time.monotonic() + ASYNC_WAIT_S
    while True:
        try:
            with LOCK:
                if lmi:
                    env, cold = _acquire_lmi(fn), False
                else:
                    env, cold = _acquire_default(fn, latest)
            break
        except errors.LambdaApiError as err:
            # Asynchronous invokes are queued by Lambda rather than throttled.
            if not wait or err.code != 429 or time.monotonic() > deadline:
                raise
            time.sleep(0.01)

    init_span = None
    timed_out = False
    try:
        if cold:
            init_start = time.time()
            time.sleep(CONFIG["default_init_ms"] / 1000.0)
            init_span = (init_start, time.time())
        fn_start = time.time()
        sleep_ms = params.get("sleep_ms", 0)
        sleep_ms = float(sleep_ms) if isinstance(sleep_ms, (int, float)) and not isinstance(sleep_ms, bool) else 0.0
        timeout_ms = float(fn.timeout) * 1000
        if sleep_ms > timeout_ms:
            sleep_ms, timed_out = timeout_ms, True
        time.sleep(sleep_ms / 1000.0)
        invocation_end = time.time()
    finally:
        with LOCK:
            env.inflight -= 1
            env.invocations += 1
            env.last_used = now()
            if timed_out and not lmi:
                # A timed-out environment is reset: the next invoke starts cold.
                pool = _POOLS.get(_key(fn))
                if pool and env in pool.envs:
                    pool.envs.remove(env)

    error_message = None
    if timed_out:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        error_message = f"{stamp} {request_id} Task timed out after {float(fn.timeout):.2f} seconds"
        body = json.dumps({"errorMessage": error_message}).encode()
    elif isinstance(params.get("fail"), str):
        error_message = params["fail"]
        body = json.dumps({"errorType": "Error", "errorMessage": error_message, "trace": []}).encode()
    else:
        queue = getattr(backend, "lambda_simple_results_queue", None)
        # moto's behaviour kept: echo the payload (or a queued canned result).
        body = queue.pop(0).encode() if queue else (payload or b"Simple Lambda happy path OK")

    duration_ms = (invocation_end - fn_start) * 1000
    overhead_end = invocation_end + 0.0004
    t_done = overhead_end + 0.0006
    version = str(fn.version)
    log = _log_text(fn, request_id, version, duration_ms, init_span, error_message, timed_out)
    traced = (fn.tracing_config or {}).get("Mode") == "Active" and trace.sampled
    function_segment_id = None
    if traced:
        function_segment_id = xray.record_invoke(
            fn=fn, trace_id=trace.root, parent_id=trace.parent, request_id=request_id,
            received=t_received, init_span=init_span, fn_start=fn_start,
            invocation_end=invocation_end, overhead_end=overhead_end, done=t_done,
            error=error_message)
    if function_segment_id:
        log += f"XRAY TraceId: {trace.root}\tSegmentId: {function_segment_id}\tSampled: true\t\n"
    _save_logs(fn, env, log)
    return Result(payload=body, function_error="Unhandled" if error_message else None, log=log, version=version)


def _log_text(fn: Any, request_id: str, version: str, duration_ms: float, init_span: Any,
              error_message: str | None, timed_out: bool) -> str:
    """START/END/REPORT as Lambda writes them; Init Duration only on a cold start."""
    lines = [f"START RequestId: {request_id} Version: {version}"]
    if error_message and not timed_out:
        lines.append(json.dumps({"errorType": "Error", "errorMessage": error_message}))
    if timed_out:
        lines.append(error_message or "")
    lines.append(f"END RequestId: {request_id}")
    memory = int(fn.memory_size)
    report = (f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
              f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\tMemory Size: {memory} MB\t"
              f"Max Memory Used: {min(memory, 64)} MB\t")
    if init_span:
        report += f"Init Duration: {(init_span[1] - init_span[0]) * 1000:.2f} ms\t"
    lines.append(report)
    return "\n".join(lines) + "\n"


def _save_logs(fn: Any, env: Environment, text: str) -> None:
    """Write to CloudWatch Logs, one stream per environment as Lambda does. Best effort."""
    try:
        logs = fn.logs_backend
        logs.ensure_log_group(fn.logs_group_name)
        if env.log_stream is None:
            date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y/%m/%d")
            env.log_stream = f"{date}/[{fn.version}]{env.id}{secrets.token_hex(8)}"
            logs.create_log_stream(fn.logs_group_name, env.log_stream)
        stamp = int(time.time() * 1000)
        logs.put_log_events(fn.logs_group_name, env.log_stream,
                            [{"timestamp": stamp, "message": line} for line in text.splitlines() if line])
    except Exception:  # noqa: BLE001 - logging must never fail an invoke
        pass


def invoke(resp: Any) -> Any:
    """The Invoke operation (replaces moto's echo handler; the echo itself is kept)."""
    raw_name = unquote(resp.path.rstrip("/").rsplit("/", 2)[-2])
    qualifier = resp.querystring.get("Qualifier")
    qualifier = qualifier[0] if isinstance(qualifier, list) and qualifier else (qualifier or None)
    headers = resp.headers
    invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
    backend = resp.backend
    fn, latest = resolve(backend, resp.current_account, resp.region, raw_name, qualifier)
    if invocation_type == "DryRun":
        return 204, {"status": 204}, ""
    payload = resp.raw_body if isinstance(resp.raw_body, bytes) else (resp.raw_body or "").encode()
    trace = parse_trace_header(headers.get("X-Amzn-Trace-Id"))
    if invocation_type == "Event":
        threading.Thread(target=_run_async, args=(backend, fn, latest, payload, trace), daemon=True).start()
        return 202, {"status": 202}, ""
    result = execute(backend, fn, latest, payload, trace)
    out = {"status": 200, "Content-Type": "application/json", "X-Amz-Executed-Version": result.version}
    if result.function_error:
        out["X-Amz-Function-Error"] = result.function_error
    if (headers.get("X-Amz-Log-Type") or "None") == "Tail":
        tail = result.log.encode()[-LOG_TAIL_BYTES:]
        out["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
    return 200, out, result.payload


def _run_async(backend: Any, fn: Any, latest: Any, payload: bytes, trace: TraceContext) -> None:
    try:
        execute(backend, fn, latest, payload, trace, wait=True)
    except Exception:  # noqa: BLE001 - nobody waits for an async invoke's result
        pass
