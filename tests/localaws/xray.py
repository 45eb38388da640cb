"""X-Ray: segments recorded for traced invokes, and fixed read operations.

Each traced invoke records two segment documents under the caller's trace id, shaped
like the real ones in shared/aws-recorded/xray-lambda-traces_real-aws_2023-04.json:

- ``origin: AWS::Lambda`` (the service): ``resource_arn``, ``aws.request_id``,
  ``http.response.status``, ``parent_id`` = the caller's Parent from the trace header;
- ``origin: AWS::Lambda::Function`` (the function), parent = the first one, with
  subsegments ``Initialization`` (cold starts only; it ends before the function
  segment starts, as in the recordings), ``Invocation`` and ``Overhead``.

Segments are handed to moto's X-Ray backend (so BatchGetTraces sees them alongside
PutTraceSegments data) once ``trace_delay_s`` has passed; ``drop_traces`` loses them.
GetTraceSummaries is reimplemented: moto returns ``Users: {}`` (the Rust SDK expects a
list) and a 500 for any FilterExpression.
"""
from __future__ import annotations

import datetime
import json
import re
import secrets
import time
from typing import Any

from moto.awslambda.utils import make_function_arn
from moto.xray.models import xray_backends

from .state import CONFIG, LOCK, now, on_reset

# (visible at, account, region, documents)
_PENDING: list[tuple[float, str, str, list[str]]] = []


@on_reset
def _reset() -> None:
    _PENDING.clear()


def _segment_id() -> str:
    return secrets.token_hex(8)


def record_invoke(*, fn: Any, trace_id: str, parent_id: str | None, request_id: str, received: float,
                  init_span: tuple[float, float] | None, fn_start: float, invocation_end: float,
                  overhead_end: float, done: float, error: str | None) -> str | None:
    """Queue the two segments of one invoke; returns the function segment's id."""
    if CONFIG["drop_traces"]:
        return None
    name = fn.function_name
    unqualified = make_function_arn(fn.region, fn.account_id, name)
    version = str(fn.version)
    arn = unqualified if version == "$LATEST" else f"{unqualified}:{version}"
    service_id, function_id = _segment_id(), _segment_id()
    service: dict[str, Any] = {
        "id": service_id, "name": name, "start_time": received, "trace_id": trace_id,
        "end_time": done,
        "http": {"response": {"status": 200}},  # a handler error still answers 200
        "aws": {"request_id": request_id},
        "origin": "AWS::Lambda", "resource_arn": arn,
    }
    if parent_id:
        service["parent_id"] = parent_id
    subsegments = []
    if init_span:
        subsegments.append({"id": _segment_id(), "name": "Initialization", "start_time": init_span[0],
                            "end_time": init_span[1], "aws": {"function_arn": arn}})
    invocation = {"id": _segment_id(), "name": "Invocation", "start_time": fn_start + 0.0001,
                  "end_time": invocation_end, "aws": {"function_arn": arn}}
    subsegments.append(invocation)
    subsegments.append({"id": _segment_id(), "name": "Overhead", "start_time": invocation_end,
                        "end_time": overhead_end, "aws": {"function_arn": arn}})
    function: dict[str, Any] = {
        "id": function_id, "name": name, "start_time": fn_start, "trace_id": trace_id,
        "end_time": overhead_end, "parent_id": service_id,
        "aws": {"account_id": fn.account_id, "function_arn": arn, "resource_names": [name]},
        "origin": "AWS::Lambda::Function", "subsegments": subsegments,
    }
    if error:
        # As in the recordings: error on AWS::Lambda, on the function segment (with a
        # cause) and on Invocation.
        service["error"] = True
        function["error"] = True
        function["cause"] = {"working_directory": "/var/task",
                             "exceptions": [{"id": _segment_id(), "message": error, "type": "Error"}]}
        invocation["error"] = True
    docs = [json.dumps(service), json.dumps(function)]
    with LOCK:
        _PENDING.append((now() + CONFIG["trace_delay_s"], fn.account_id, fn.region, docs))
    flush()
    return function_id


def flush() -> None:
    """Hand every due segment to moto's X-Ray backend."""
    with LOCK:
        t = now()
        due = [p for p in _PENDING if p[0] <= t]
        _PENDING[:] = [p for p in _PENDING if p[0] > t]
        for _, account, region, docs in due:
            backend = xray_backends[account][region]
            for doc in docs:
                backend.process_segment(doc)


def _traces(account: str, region: str) -> dict[str, dict[str, Any]]:
    flush()
    return xray_backends[account][region]._segment_collection._traces


def _docs(trace: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for seg in trace["segments"]:
        try:
            out.append(json.loads(seg.raw))
        except (TypeError, ValueError):
            continue
    return out


def _span(docs: list[dict[str, Any]]) -> tuple[float, float]:
    start = min(float(d["start_time"]) for d in docs)
    end = max(float(d.get("end_time") or d["start_time"]) for d in docs)
    return start, end


def batch_get_traces(resp: Any) -> Any:
    """BatchGetTraces with float durations (moto truncates them to whole seconds)."""
    body = json.loads(resp.body or "{}")
    ids = body.get("TraceIds")
    if ids is None:
        return 400, {"status": 400}, json.dumps({"__type": "InvalidRequestException",
                                                 "message": "TraceIds is required"})
    with LOCK:
        traces = _traces(resp.current_account, resp.region)
        found, unprocessed = [], []
        for trace_id in ids:
            trace = traces.get(trace_id)
            docs = _docs(trace) if trace else []
            if not docs:
                unprocessed.append(trace_id)
                continue
            start, end = _span(docs)
            found.append({"Id": trace_id, "Duration": round(end - start, 3), "LimitExceeded": False,
                          "Segments": [{"Id": s.id, "Document": s.raw} for s in trace["segments"]]})
    return 200, {"status": 200}, json.dumps({"Traces": found, "UnprocessedTraceIds": unprocessed})


_SERVICE_FILTER = re.compile(r'service\(\s*"([^"]+)"\s*\)')


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def get_trace_summaries(resp: Any) -> Any:
    """Summaries of the traces that started in [StartTime, EndTime]. FilterExpression
    supports ``service("name")`` (a segment with that name); anything else is ignored."""
    body = json.loads(resp.body or "{}")
    if body.get("StartTime") is None or body.get("EndTime") is None:
        return 400, {"status": 400}, json.dumps({"__type": "InvalidRequestException",
                                                 "message": "StartTime and EndTime are required"})
    start_range, end_range = _timestamp(body["StartTime"]), _timestamp(body["EndTime"])
    wanted = _SERVICE_FILTER.findall(body.get("FilterExpression") or "")
    summaries = []
    with LOCK:
        traces = _traces(resp.current_account, resp.region)
        for trace_id, trace in traces.items():
            docs = _docs(trace)
            if not docs:
                continue
            start, end = _span(docs)
            if not start_range <= start <= end_range:
                continue
            if wanted and not any(d.get("name") in wanted for d in docs):
                continue
            root = next((d for d in docs if not d.get("parent_id")), min(docs, key=lambda d: d["start_time"]))
            status = ((root.get("http") or {}).get("response") or {}).get("status")
            services: dict[tuple[str, str], dict[str, Any]] = {}
            arns = []
            for d in docs:
                key = (d.get("name", ""), d.get("origin", ""))
                services.setdefault(key, {"Name": key[0], "Names": [key[0]], "Type": key[1],
                                          "AccountId": (d.get("aws") or {}).get("account_id", resp.current_account)})
                if d.get("resource_arn") and {"ARN": d["resource_arn"]} not in arns:
                    arns.append({"ARN": d["resource_arn"]})
            summary: dict[str, Any] = {
                "Id": trace_id,
                "StartTime": start,
                "Duration": round(end - start, 3),
                "ResponseTime": round(float(root.get("end_time", end)) - float(root["start_time"]), 3),
                "HasFault": any(d.get("fault") for d in docs),
                "HasError": any(d.get("error") for d in docs),
                "HasThrottle": any(d.get("throttle") for d in docs),
                "IsPartial": False,
                "Annotations": {},
                "Users": [],
                "ServiceIds": list(services.values()),
                "ResourceARNs": arns,
            }
            if status is not None:
                summary["Http"] = {"HttpStatus": int(status)}
            summaries.append(summary)
    summaries.sort(key=lambda s: s["StartTime"])
    return 200, {"status": 200}, json.dumps({
        "TraceSummaries": summaries,
        "ApproximateTime": time.time(),
        "TracesProcessedCount": len(summaries),
    })
