"""Invoke, execution environments and X-Ray segments (README "Execution environments")."""
from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import Stack, invoke_traced, new_trace_id, segments, wait_for
from .test_capacity_providers import error


def tail(resp: dict[str, Any]) -> str:
    return base64.b64decode(resp["LogResult"]).decode()


def by_origin(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["origin"]: d for d in docs}


def subsegment_names(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(s["name"] for s in by_origin(docs)["AWS::Lambda::Function"]["subsegments"])


def concurrently(n: int, call) -> list[Any]:
    """Run ``call(i)`` n times at once; returns results or the exceptions raised."""
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            results[i] = call(i)
        except Exception as exc:  # noqa: BLE001
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_default_function_echoes_and_cold_start_only_once(stack: Stack, lam) -> None:
    stack.function("plain")
    first = lam.invoke(FunctionName="plain", Payload=b'{"hello": 1}', LogType="Tail")
    assert first["StatusCode"] == 200
    assert first["ExecutedVersion"] == "$LATEST"
    assert json.loads(first["Payload"].read()) == {"hello": 1}
    log = tail(first)
    assert log.startswith("START RequestId: ") and "END RequestId: " in log
    report = [line for line in log.splitlines() if line.startswith("REPORT ")][0]
    for field in ("Duration: ", "Billed Duration: ", "Memory Size: 128 MB", "Max Memory Used: ", "Init Duration: "):
        assert field in report
    second = lam.invoke(FunctionName="plain", Payload=b"{}", LogType="Tail")
    assert "Init Duration" not in tail(second)
    # Without LogType=Tail there is no log.
    assert "LogResult" not in lam.invoke(FunctionName="plain", Payload=b"{}")


def test_traced_invoke_records_two_segments_shaped_like_aws(stack: Stack, lam, xray) -> None:
    stack.function("traced")
    cold_id, warm_id = new_trace_id(), new_trace_id()
    invoke_traced(lam, cold_id, FunctionName="traced", Payload=b'{"sleep_ms": 20}')
    invoke_traced(lam, warm_id, FunctionName="traced", Payload=b"{}")
    cold = segments(xray, cold_id)
    assert len(cold) == 2
    docs = by_origin(cold)
    service, function = docs["AWS::Lambda"], docs["AWS::Lambda::Function"]
    arn = "arn:aws:lambda:us-east-1:123456789012:function:traced"
    # Field names as in aws-recorded/xray-lambda-traces_real-aws_2023-04.json.
    assert service["name"] == function["name"] == "traced"
    assert service["trace_id"] == function["trace_id"] == cold_id
    assert service["parent_id"] == "53995c3f42cd8ad8"  # the caller's Parent
    assert service["resource_arn"] == arn
    assert service["http"] == {"response": {"status": 200}}
    assert service["aws"]["request_id"]
    assert function["parent_id"] == service["id"]
    assert function["aws"] == {"account_id": "123456789012", "function_arn": arn, "resource_names": ["traced"]}
    assert subsegment_names(cold) == ["Initialization", "Invocation", "Overhead"]
    subs = {s["name"]: s for s in function["subsegments"]}
    # Initialization ends before the function segment starts, inside the service segment.
    assert subs["Initialization"]["end_time"] <= function["start_time"]
    assert service["start_time"] <= subs["Initialization"]["start_time"]
    assert subs["Invocation"]["end_time"] - subs["Invocation"]["start_time"] >= 0.019
    assert function["end_time"] <= service["end_time"]
    for seg in (service, function):
        assert {"id", "name", "start_time", "end_time", "trace_id", "origin"} <= set(seg)
    assert subsegment_names(segments(xray, warm_id)) == ["Invocation", "Overhead"]


def test_no_trace_without_active_tracing_or_when_not_sampled(stack: Stack, lam, xray) -> None:
    stack.function("untraced", tracing=False)
    trace_id = new_trace_id()
    invoke_traced(lam, trace_id, FunctionName="untraced")
    assert segments(xray, trace_id) == []
    stack.function("traced")

    def not_sampled(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = f"Root={trace_id};Sampled=0"

    lam.meta.events.register_first("before-send.lambda.Invoke", not_sampled)
    try:
        lam.invoke(FunctionName="traced")
    finally:
        lam.meta.events.unregister("before-send.lambda.Invoke", not_sampled)
    assert segments(xray, trace_id) == []


def test_invoke_without_trace_header_gets_a_new_trace(stack: Stack, lam, xray) -> None:
    stack.function("traced")
    start = time.time() - 1
    lam.invoke(FunctionName="traced")
    summaries = xray.get_trace_summaries(StartTime=start, EndTime=time.time() + 1)["TraceSummaries"]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["Id"].startswith("1-")
    assert summary["Users"] == [] and summary["HasError"] is False
    assert {s["Type"] for s in summary["ServiceIds"]} == {"AWS::Lambda", "AWS::Lambda::Function"}
    assert len(segments(xray, summary["Id"])) == 2


def test_get_trace_summaries_time_range_and_filter(stack: Stack, lam, xray) -> None:
    stack.function("a")
    stack.function("b")
    start = time.time() - 1
    lam.invoke(FunctionName="a")
    lam.invoke(FunctionName="b")
    end = time.time() + 1
    assert len(xray.get_trace_summaries(StartTime=start, EndTime=end)["TraceSummaries"]) == 2
    only_a = xray.get_trace_summaries(StartTime=start, EndTime=end, FilterExpression='service("a")')
    assert len(only_a["TraceSummaries"]) == 1
    # Unsupported expressions are ignored rather than failing (moto answered 500).
    assert len(xray.get_trace_summaries(StartTime=start, EndTime=end, FilterExpression="responsetime > 5")["TraceSummaries"]) == 2
    assert xray.get_trace_summaries(StartTime=start - 100, EndTime=start - 50)["TraceSummaries"] == []


def test_concurrent_invokes_of_a_default_function_start_separate_environments(stack: Stack, lam) -> None:
    stack.function("plain")
    results = concurrently(3, lambda i: lam.invoke(FunctionName="plain", Payload=b'{"sleep_ms": 300}', LogType="Tail"))
    assert all("Init Duration" in tail(r) for r in results)
    # Three warm environments now: three more overlapping invokes are all warm.
    results = concurrently(3, lambda i: lam.invoke(FunctionName="plain", Payload=b'{"sleep_ms": 300}', LogType="Tail"))
    assert not any("Init Duration" in tail(r) for r in results)


def test_idle_environments_expire(aws, stack: Stack, lam) -> None:
    aws.configure(default_env_idle_s=0.3)
    stack.function("plain")
    assert "Init Duration" in tail(lam.invoke(FunctionName="plain", LogType="Tail"))
    assert "Init Duration" not in tail(lam.invoke(FunctionName="plain", LogType="Tail"))
    time.sleep(0.5)
    assert "Init Duration" in tail(lam.invoke(FunctionName="plain", LogType="Tail"))


def test_init_duration_is_configurable(aws, stack: Stack, lam) -> None:
    aws.configure(default_init_ms=300)
    stack.function("plain")
    t = time.monotonic()
    log = tail(lam.invoke(FunctionName="plain", LogType="Tail"))
    assert time.monotonic() - t >= 0.3
    init_ms = float(log.split("Init Duration: ")[1].split(" ms")[0])
    assert 300 <= init_ms < 1000


def test_code_update_replaces_latest_environments(stack: Stack, lam) -> None:
    stack.function("plain")
    lam.invoke(FunctionName="plain")
    lam.update_function_configuration(FunctionName="plain", Description="new")
    assert "Init Duration" in tail(lam.invoke(FunctionName="plain", LogType="Tail"))


def test_lmi_version_never_records_initialization(stack: Stack, lam, xray) -> None:
    stack.lmi_version("lmi")
    trace_id = new_trace_id()
    resp = invoke_traced(lam, trace_id, FunctionName="lmi", Payload=b'{"x": 1}', LogType="Tail")
    assert resp["ExecutedVersion"] == "$LATEST.PUBLISHED"
    assert json.loads(resp["Payload"].read()) == {"x": 1}
    assert "Init Duration" not in tail(resp)
    assert "REPORT RequestId" in tail(resp)
    docs = segments(xray, trace_id)
    assert subsegment_names(docs) == ["Invocation", "Overhead"]
    assert by_origin(docs)["AWS::Lambda"]["resource_arn"].endswith(":function:lmi:$LATEST.PUBLISHED")
    # The qualified forms reach the same version.
    assert lam.invoke(FunctionName="lmi", Qualifier="$LATEST.PUBLISHED")["ExecutedVersion"] == "$LATEST.PUBLISHED"
    assert lam.invoke(FunctionName="lmi:$LATEST.PUBLISHED")["ExecutedVersion"] == "$LATEST.PUBLISHED"


def test_lmi_latest_and_unpublished_invokes_fail_as_aws(stack: Stack, lam) -> None:
    cp = stack.provider("cp")
    stack.function("lmi", provider_arn=cp["CapacityProviderArn"])
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="lmi")
    assert error(exc)[:2] == ("NoPublishedVersionException", 400)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="lmi", Qualifier="$LATEST")
    assert error(exc)[0] == "NoPublishedVersionException"
    lam.publish_version(FunctionName="lmi")
    # A numbered version alone does not serve unqualified invokes: they go to $LATEST.PUBLISHED.
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="lmi")
    assert error(exc)[0] == "NoPublishedVersionException"
    lam.publish_version(FunctionName="lmi", PublishTo="LATEST_PUBLISHED")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="lmi", Qualifier="$LATEST")
    code, status, message = error(exc)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "can't be invoked with $LATEST qualifier" in message


def test_lmi_version_is_not_invocable_while_pending(aws, stack: Stack, lam) -> None:
    aws.configure(version_active_delay_s=0.5)
    cp = stack.provider("cp")
    stack.function("lmi", provider_arn=cp["CapacityProviderArn"])
    lam.publish_version(FunctionName="lmi")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="lmi", Qualifier="1")
    assert error(exc)[:2] == ("ResourceConflictException", 409)
    assert error(exc)[2].endswith("in the following state: Pending")
    time.sleep(0.6)
    assert lam.invoke(FunctionName="lmi", Qualifier="1")["StatusCode"] == 200


def test_lmi_saturation_gives_429(stack: Stack, lam) -> None:
    # 3 environments (the default minimum) x 1 concurrent invoke each.
    stack.lmi_version("lmi", lmi={"PerExecutionEnvironmentMaxConcurrency": 1})
    results = concurrently(4, lambda i: lam.invoke(FunctionName="lmi", Payload=b'{"sleep_ms": 800}'))
    ok = [r for r in results if isinstance(r, dict)]
    throttled = [r for r in results if isinstance(r, ClientError)]
    assert len(ok) == 3 and len(throttled) == 1
    err = throttled[0].response
    assert err["Error"]["Code"] == "TooManyRequestsException"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert err["Reason"] == "ConcurrentInvocationLimitExceeded"
    # Once they finish, capacity is back.
    assert lam.invoke(FunctionName="lmi")["StatusCode"] == 200


def test_lmi_environment_serves_several_invokes_at_once(aws, stack: Stack, lam) -> None:
    stack.lmi_version("lmi", lmi={"PerExecutionEnvironmentMaxConcurrency": 2})
    lam.put_function_scaling_config(FunctionName="lmi", Qualifier="$LATEST.PUBLISHED",
                                    FunctionScalingConfig={"MinExecutionEnvironments": 1})
    time.sleep(0.1)  # applied after version_active_delay_s
    results = concurrently(3, lambda i: lam.invoke(FunctionName="lmi", Payload=b'{"sleep_ms": 800}'))
    assert sum(isinstance(r, ClientError) for r in results) == 1
    pools = aws.request("GET", "/_localaws/environments")["pools"]
    pool = [p for p in pools if p["function"] == "lmi"][0]
    assert pool["lmi"] is True and len(pool["environments"]) == 1
    assert pool["environments"][0]["invocations"] == 2


def test_lmi_scaling_config_adds_environments(stack: Stack, lam) -> None:
    stack.lmi_version("lmi", lmi={"PerExecutionEnvironmentMaxConcurrency": 1})
    lam.put_function_scaling_config(FunctionName="lmi", Qualifier="$LATEST.PUBLISHED",
                                    FunctionScalingConfig={"MinExecutionEnvironments": 5})
    time.sleep(0.1)
    results = concurrently(5, lambda i: lam.invoke(FunctionName="lmi", Payload=b'{"sleep_ms": 600}'))
    assert all(isinstance(r, dict) for r in results)


def test_trace_delay_and_drop(aws, stack: Stack, lam, xray) -> None:
    aws.configure(trace_delay_s=0.6)
    stack.function("traced")
    trace_id = new_trace_id()
    invoke_traced(lam, trace_id, FunctionName="traced")
    assert segments(xray, trace_id) == []
    assert xray.batch_get_traces(TraceIds=[trace_id])["UnprocessedTraceIds"] == [trace_id]
    time.sleep(0.7)
    assert len(segments(xray, trace_id)) == 2
    aws.configure(trace_delay_s=0, drop_traces=True)
    dropped = new_trace_id()
    invoke_traced(lam, dropped, FunctionName="traced")
    time.sleep(0.1)
    assert segments(xray, dropped) == []


def test_handler_error_from_payload(stack: Stack, lam, xray) -> None:
    stack.function("traced")
    trace_id = new_trace_id()
    resp = invoke_traced(lam, trace_id, FunctionName="traced", Payload=b'{"fail": "boom"}')
    assert resp["StatusCode"] == 200 and resp["FunctionError"] == "Unhandled"
    assert json.loads(resp["Payload"].read())["errorMessage"] == "boom"
    docs = by_origin(segments(xray, trace_id))
    assert docs["AWS::Lambda"]["error"] is True and docs["AWS::Lambda"]["http"]["response"]["status"] == 200
    assert docs["AWS::Lambda::Function"]["error"] is True
    assert docs["AWS::Lambda::Function"]["cause"]["exceptions"][0]["message"] == "boom"


def test_timeout(stack: Stack, lam) -> None:
    stack.function("short", Timeout=1)
    resp = lam.invoke(FunctionName="short", Payload=b'{"sleep_ms": 5000}')
    assert resp["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in json.loads(resp["Payload"].read())["errorMessage"]


def test_async_and_dry_run_invokes(stack: Stack, lam, xray) -> None:
    stack.function("traced")
    assert lam.invoke(FunctionName="traced", InvocationType="DryRun")["StatusCode"] == 204
    trace_id = new_trace_id()
    assert invoke_traced(lam, trace_id, FunctionName="traced", InvocationType="Event")["StatusCode"] == 202
    wait_for(lambda: segments(xray, trace_id), timeout=5)


def test_missing_function_and_version_are_not_found(stack: Stack, lam) -> None:
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="nope")
    assert error(exc)[:2] == ("ResourceNotFoundException", 404)
    stack.function("plain")
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="plain", Qualifier="7")
    assert error(exc)[0] == "ResourceNotFoundException"


def test_reserved_concurrency_zero_throttles(stack: Stack, lam) -> None:
    stack.function("plain")
    lam.put_function_concurrency(FunctionName="plain", ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as exc:
        lam.invoke(FunctionName="plain")
    assert error(exc)[:2] == ("TooManyRequestsException", 429)


def test_invoke_logs_reach_cloudwatch(aws, stack: Stack, lam) -> None:
    stack.function("plain")
    lam.invoke(FunctionName="plain")
    logs = aws.client("logs")
    streams = logs.describe_log_streams(logGroupName="/aws/lambda/plain")["logStreams"]
    assert len(streams) == 1
    events = logs.get_log_events(logGroupName="/aws/lambda/plain", logStreamName=streams[0]["logStreamName"])["events"]
    assert any(e["message"].startswith("REPORT RequestId") for e in events)
