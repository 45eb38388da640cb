"""The control endpoint: latency and fault injection, the call log, config, and reset."""
from __future__ import annotations

import time
import urllib.error

import pytest
from botocore.exceptions import ClientError

from .conftest import FAST, LocalAws, Stack, invoke_traced, new_trace_id, segments
from .state import DEFAULTS


def test_latency_per_operation(aws: LocalAws) -> None:
    ec2 = aws.client("ec2")
    aws.configure(latency_s={"ec2:CreateVpc": 0.5})
    t = time.monotonic()
    ec2.create_vpc(CidrBlock="10.0.0.0/16")
    assert time.monotonic() - t >= 0.5
    t = time.monotonic()
    ec2.describe_vpcs()
    assert time.monotonic() - t < 0.5
    aws.configure(latency_s={"ec2:CreateVpc": None, "ec2:*": 0.3})
    t = time.monotonic()
    ec2.describe_vpcs()
    assert time.monotonic() - t >= 0.3
    assert aws.request("GET", "/_localaws/config")["latency_s"] == {"ec2:*": 0.3}


@pytest.mark.parametrize("service,call,code,status", [
    ("ec2", lambda c: c.describe_vpcs(), "RequestLimitExceeded", 503),
    ("iam", lambda c: c.list_roles(), "Throttling", 400),
    ("sts", lambda c: c.get_caller_identity(), "Throttling", 400),
    ("lambda", lambda c: c.list_functions(), "TooManyRequestsException", 429),
    ("xray", lambda c: c.batch_get_traces(TraceIds=["1-00000000-000000000000000000000000"]), "ThrottledException", 429),
    ("logs", lambda c: c.describe_log_groups(), "ThrottlingException", 400),
])
def test_injected_throttling_uses_each_protocols_shape(aws: LocalAws, service, call, code, status) -> None:
    aws.configure(fault={"throttle_rate": 1.0})
    with pytest.raises(ClientError) as exc:
        call(aws.client(service))
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


@pytest.mark.parametrize("service,call,code", [
    ("ec2", lambda c: c.describe_vpcs(), "InternalError"),
    ("iam", lambda c: c.list_roles(), "ServiceFailure"),
    ("lambda", lambda c: c.list_functions(), "ServiceException"),
    ("xray", lambda c: c.batch_get_traces(TraceIds=["1-00000000-000000000000000000000000"]), "InternalFailure"),
])
def test_injected_server_errors_are_500s(aws: LocalAws, service, call, code) -> None:
    aws.configure(fault={"error_rate": 1.0})
    with pytest.raises(ClientError) as exc:
        call(aws.client(service))
    assert exc.value.response["Error"]["Code"] == code
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_sdk_retries_classify_injected_faults_and_recover(aws: LocalAws) -> None:
    aws.configure(fault={"throttle_rate": 0.5, "error_rate": 0.5, "max_faults": 2})
    ec2 = aws.client("ec2", retries=3)
    resp = ec2.describe_vpcs()
    assert resp["ResponseMetadata"]["RetryAttempts"] == 2
    assert aws.calls() == ["ec2:DescribeVpcs"] * 3
    assert aws.request("GET", "/_localaws/config")["fault"]["injected"] == 2


def test_fault_sequence_is_reproducible_with_a_seed(aws: LocalAws) -> None:
    def run() -> list[bool]:
        aws.configure(fault={"throttle_rate": 0.5, "seed": 7})
        out = []
        for _ in range(12):
            try:
                aws.client("iam").list_roles()
                out.append(True)
            except ClientError:
                out.append(False)
        return out

    first = run()
    assert run() == first
    assert True in first and False in first


def test_faults_can_target_operations(aws: LocalAws) -> None:
    aws.configure(fault={"throttle_rate": 1.0, "operations": ["ec2:CreateNatGateway", "iam:*"]})
    ec2 = aws.client("ec2")
    ec2.describe_vpcs()  # not targeted
    with pytest.raises(ClientError):
        aws.client("iam").list_roles()


def test_call_log_names_signed_operations_only(aws: LocalAws, stack: Stack) -> None:
    aws.request("DELETE", "/_localaws/calls")
    lam = aws.client("lambda")
    stack.function("plain")
    lam.invoke(FunctionName="plain")
    lam.list_capacity_providers()
    aws.client("ec2").describe_vpcs()
    aws.request("GET", "/_localaws/config")
    assert aws.calls() == ["lambda:CreateFunction", "lambda:Invoke", "lambda:ListCapacityProviders",
                           "ec2:DescribeVpcs"]
    detail = aws.request("GET", "/_localaws/calls?detail=1")["calls"]
    assert detail[0]["status"] == 201 and detail[0]["injected"] is None
    aws.request("DELETE", "/_localaws/calls")
    assert aws.calls() == []


def test_rest_operations_are_named_from_the_model(aws: LocalAws, stack: Stack) -> None:
    setup_calls = aws.calls()  # the stack fixture: query protocols (IAM, EC2)
    assert "iam:CreateRole" in setup_calls and "iam:AttachRolePolicy" in setup_calls
    assert "ec2:CreateSubnet" in setup_calls
    aws.request("DELETE", "/_localaws/calls")
    lam = aws.client("lambda")
    cp = stack.provider("cp")
    lam.get_capacity_provider(CapacityProviderName="cp")
    lam.list_tags(Resource=cp["CapacityProviderArn"])
    aws.client("xray").get_trace_summaries(StartTime=0, EndTime=time.time())
    calls = aws.calls()
    for op in ("lambda:CreateCapacityProvider", "lambda:GetCapacityProvider", "lambda:ListTags",
               "xray:GetTraceSummaries"):
        assert op in calls


def test_config_is_validated_and_can_be_restored(aws: LocalAws) -> None:
    config = aws.request("DELETE", "/_localaws/config")
    expected = dict(DEFAULTS, fault=dict(DEFAULTS["fault"], injected=0))
    assert config == expected
    for bad in ({"nope": 1}, {"trace_delay_s": -1}, {"fault": {"throttle_rate": 2}},
                {"drop_traces": "yes"}, {"fault": {"throttle_rate": 0.7, "error_rate": 0.7}}):
        with pytest.raises(urllib.error.HTTPError) as exc:
            aws.configure(**bad)
        assert exc.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as exc:
        aws.request("GET", "/_localaws/nothing")
    assert exc.value.code == 404
    assert aws.request("GET", "/_localaws/health") == {"status": "ok"}


def test_moto_reset_clears_the_extension_too(aws: LocalAws, stack: Stack) -> None:
    lam, xray = aws.client("lambda"), aws.client("xray")
    stack.lmi_version("lmi")
    stack.function("traced")
    trace_id = new_trace_id()
    invoke_traced(lam, trace_id, FunctionName="traced")
    aws.configure(trace_delay_s=5, latency_s={"ec2:CreateVpc": 1}, fault={"seed": 1})
    assert aws.request("GET", "/_localaws/environments")["pools"]
    aws.reset()
    assert lam.list_capacity_providers()["CapacityProviders"] == []
    assert lam.list_functions()["Functions"] == []
    assert segments(xray, trace_id) == []
    assert aws.request("GET", "/_localaws/environments")["pools"] == []
    assert aws.request("GET", "/_localaws/config")["trace_delay_s"] == DEFAULTS["trace_delay_s"]
    assert aws.calls() == ["lambda:ListCapacityProviders", "lambda:ListFunctions", "xray:BatchGetTraces"]
    aws.configure(**FAST)
