"""LMI functions and versions (LMI-FACTS "Functions on a capacity provider")."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .conftest import Stack, code_zip, wait_for
from .test_capacity_providers import error


@pytest.fixture
def cp(stack: Stack) -> dict:
    return stack.provider("cp")


def test_lmi_function_stores_its_config_and_latest_is_not_invocable(stack: Stack, cp: dict, lam) -> None:
    created = stack.function("f", provider_arn=cp["CapacityProviderArn"])
    expected = {"LambdaManagedInstancesCapacityProviderConfig": {
        "CapacityProviderArn": cp["CapacityProviderArn"],
        "ExecutionEnvironmentMemoryGiBPerVCpu": 2.0,
        "PerExecutionEnvironmentMaxConcurrency": 16,  # Python: 16 per vCPU, 2048 MB / 2 GiB = 1 vCPU
    }}
    assert created["CapacityProviderConfig"] == expected
    assert created["State"] == "Pending" and created["StateReasonCode"] == "Creating"
    config = lam.get_function(FunctionName="f")["Configuration"]
    assert config["State"] == "ActiveNonInvocable"
    assert config["CapacityProviderConfig"] == expected
    assert config["MemorySize"] == 2048
    assert lam.get_function_configuration(FunctionName="f", Qualifier="$LATEST")["State"] == "ActiveNonInvocable"
    listed = [f for f in lam.list_functions()["Functions"] if f["FunctionName"] == "f"][0]
    assert listed["CapacityProviderConfig"] == expected


def test_memory_defaults_to_2048_and_concurrency_default_follows_runtime_and_vcpus(stack: Stack, cp: dict, lam) -> None:
    lam.create_function(FunctionName="node", Runtime="nodejs22.x", Role=stack.exec_role, Handler="index.handler",
                        Code={"ZipFile": code_zip()},
                        CapacityProviderConfig={"LambdaManagedInstancesCapacityProviderConfig": {
                            "CapacityProviderArn": cp["CapacityProviderArn"]}})
    config = lam.get_function_configuration(FunctionName="node")
    assert config["MemorySize"] == 2048
    assert config["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"][
        "PerExecutionEnvironmentMaxConcurrency"] == 64
    stack.function("big", provider_arn=cp["CapacityProviderArn"], MemorySize=8192,
                   lmi={"ExecutionEnvironmentMemoryGiBPerVCpu": 4, "PerExecutionEnvironmentMaxConcurrency": 5})
    inner = lam.get_function_configuration(FunctionName="big")["CapacityProviderConfig"][
        "LambdaManagedInstancesCapacityProviderConfig"]
    assert inner["ExecutionEnvironmentMemoryGiBPerVCpu"] == 4.0
    assert inner["PerExecutionEnvironmentMaxConcurrency"] == 5


UNSUPPORTED = ["nodejs16.x", "nodejs20.x", "python3.12", "java17", "dotnet6", "ruby3.3", "provided.al2"]
SUPPORTED = ["nodejs22.x", "nodejs24.x", "python3.13", "python3.14", "java21", "java25", "dotnet8", "dotnet10",
             "provided.al2023"]


def test_runtime_allow_list_and_aws_error_text(stack: Stack, cp: dict) -> None:
    # One test rather than one per runtime: each test pays for a fresh stack.
    for runtime in UNSUPPORTED:
        with pytest.raises(ClientError) as exc:
            stack.function("f", provider_arn=cp["CapacityProviderArn"], Runtime=runtime)
        assert error(exc) == ("InvalidParameterValueException", 400,
                              f"Runtime Enum {runtime} does not support specified feature: Lambda Managed Instances")
    for i, runtime in enumerate(SUPPORTED):
        assert stack.function(f"f{i}", provider_arn=cp["CapacityProviderArn"], Runtime=runtime)["Runtime"] == runtime


def test_memory_rules(stack: Stack, cp: dict) -> None:
    arn = cp["CapacityProviderArn"]
    with pytest.raises(ClientError) as exc:
        stack.function("f", provider_arn=arn, MemorySize=1024)
    assert error(exc) == ("ValidationException", 400,
                          "Lambda Managed Instance functions must have memory size greater than or equal to 2048")
    with pytest.raises(ClientError) as exc:
        stack.function("f", provider_arn=arn, MemorySize=2048, lmi={"ExecutionEnvironmentMemoryGiBPerVCpu": 4})
    assert error(exc)[0] == "InvalidParameterValueException"
    assert error(exc)[2].startswith("Memory ratio of 4096.0MB per CPU exceeds function's total memory")
    with pytest.raises(ClientError) as exc:
        stack.function("f", provider_arn=arn, MemorySize=3000)
    assert error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        stack.function("f", provider_arn=arn, lmi={"PerExecutionEnvironmentMaxConcurrency": 2000})
    assert error(exc)[0] == "ValidationException"


def test_provider_must_exist_and_match_architecture(stack: Stack, cp: dict) -> None:
    missing = cp["CapacityProviderArn"].replace(":cp", ":missing")
    with pytest.raises(ClientError) as exc:
        stack.function("f", provider_arn=missing)
    assert error(exc) == ("ResourceNotFoundException", 404, f"Capacity provider not found: {missing}")
    with pytest.raises(ClientError) as exc:
        stack.function("f", provider_arn=cp["CapacityProviderArn"], Architectures=["arm64"])
    assert error(exc)[0] == "InvalidParameterValueException"


def test_publish_numbered_version_pending_then_active(aws, stack: Stack, cp: dict, lam) -> None:
    aws.configure(version_active_delay_s=0.5)
    stack.function("f", provider_arn=cp["CapacityProviderArn"])
    v1 = lam.publish_version(FunctionName="f", Description="first")
    assert v1["Version"] == "1" and v1["State"] == "Pending" and v1["StateReasonCode"] == "Creating"
    assert v1["FunctionArn"].endswith(":function:f:1")
    inner = v1["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"]
    assert inner["CapacityProviderArn"] == cp["CapacityProviderArn"]
    assert lam.get_function(FunctionName="f", Qualifier="1")["Configuration"]["State"] == "Pending"
    time.sleep(0.6)
    assert lam.get_function(FunctionName="f", Qualifier="1")["Configuration"]["State"] == "Active"
    # The SDK waiter works against it.
    lam.get_waiter("published_version_active").wait(FunctionName="f", Qualifier="1",
                                                     WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    # Nothing changed: the same version comes back.
    assert lam.publish_version(FunctionName="f")["Version"] == "1"
    lam.update_function_configuration(FunctionName="f", Description="changed")
    assert lam.publish_version(FunctionName="f")["Version"] == "2"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="f")["Versions"]]
    assert versions == ["$LATEST", "1", "2"]


def test_publish_to_latest_published_creates_and_overwrites(aws, stack: Stack, cp: dict, lam) -> None:
    aws.configure(version_active_delay_s=0.3)
    stack.function("f", provider_arn=cp["CapacityProviderArn"])
    first = lam.publish_version(FunctionName="f", PublishTo="LATEST_PUBLISHED")
    assert first["Version"] == "$LATEST.PUBLISHED"
    assert first["FunctionArn"].endswith(":function:f:$LATEST.PUBLISHED")
    wait_for(lambda: lam.get_function_configuration(FunctionName="f", Qualifier="$LATEST.PUBLISHED")["State"] == "Active")
    lam.update_function_code(FunctionName="f", ZipFile=code_zip() + b" ")
    second = lam.publish_version(FunctionName="f", PublishTo="LATEST_PUBLISHED")
    assert second["Version"] == "$LATEST.PUBLISHED" and second["State"] == "Pending"
    assert second["CodeSha256"] != first["CodeSha256"]
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="f")["Versions"]]
    assert versions.count("$LATEST.PUBLISHED") == 1
    # Qualified names in the path work too.
    assert lam.get_function(FunctionName="f:$LATEST.PUBLISHED")["Configuration"]["Version"] == "$LATEST.PUBLISHED"


def test_create_function_can_publish_to_latest_published(stack: Stack, cp: dict, lam) -> None:
    created = stack.function("f", provider_arn=cp["CapacityProviderArn"], Publish=True, PublishTo="LATEST_PUBLISHED")
    assert created["Version"] == "$LATEST.PUBLISHED"
    assert lam.get_function_configuration(FunctionName="f", Qualifier="$LATEST.PUBLISHED")["Version"] == "$LATEST.PUBLISHED"


def test_publish_to_is_for_lmi_functions_only(stack: Stack, lam) -> None:
    stack.function("plain")
    with pytest.raises(ClientError) as exc:
        lam.publish_version(FunctionName="plain", PublishTo="LATEST_PUBLISHED")
    assert error(exc)[0] == "InvalidParameterValueException"


def test_capacity_provider_config_cannot_be_added_to_a_default_function(stack: Stack, cp: dict, lam) -> None:
    stack.function("plain")
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName="plain", CapacityProviderConfig={
            "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": cp["CapacityProviderArn"]}})
    assert error(exc) == ("InvalidParameterValueException", 400,
                          "CapacityProviderConfig isn't supported for Lambda Default functions.")


def test_lmi_update_is_revalidated_and_can_switch_provider(stack: Stack, cp: dict, lam) -> None:
    stack.function("f", provider_arn=cp["CapacityProviderArn"])
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName="f", MemorySize=1024)
    assert error(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        lam.update_function_configuration(FunctionName="f", Runtime="python3.12")
    assert "does not support specified feature" in error(exc)[2]
    other = stack.provider("other")
    updated = lam.update_function_configuration(FunctionName="f", CapacityProviderConfig={
        "LambdaManagedInstancesCapacityProviderConfig": {"CapacityProviderArn": other["CapacityProviderArn"],
                                                         "PerExecutionEnvironmentMaxConcurrency": 4}})
    inner = updated["CapacityProviderConfig"]["LambdaManagedInstancesCapacityProviderConfig"]
    assert inner["CapacityProviderArn"] == other["CapacityProviderArn"]
    assert inner["PerExecutionEnvironmentMaxConcurrency"] == 4
    traced = lam.update_function_configuration(FunctionName="f", TracingConfig={"Mode": "PassThrough"})
    assert traced["TracingConfig"] == {"Mode": "PassThrough"}


def test_last_update_status_goes_in_progress_then_successful(aws, stack: Stack, lam) -> None:
    aws.configure(function_update_delay_s=0.4)
    stack.function("plain")
    updated = lam.update_function_configuration(FunctionName="plain", Timeout=10)
    assert updated["LastUpdateStatus"] == "InProgress"
    with pytest.raises(ClientError) as exc:
        lam.update_function_code(FunctionName="plain", ZipFile=code_zip())
    assert error(exc)[0] == "ResourceConflictException"
    assert "An update is in progress" in error(exc)[2]
    lam.get_waiter("function_updated_v2").wait(FunctionName="plain", WaiterConfig={"Delay": 1, "MaxAttempts": 5})
    assert lam.get_function_configuration(FunctionName="plain")["LastUpdateStatus"] == "Successful"


def test_deleting_latest_alone_is_refused_and_versions_can_be_deleted(stack: Stack, cp: dict, lam) -> None:
    stack.function("f", provider_arn=cp["CapacityProviderArn"])
    lam.publish_version(FunctionName="f")
    with pytest.raises(ClientError) as exc:
        lam.delete_function(FunctionName="f", Qualifier="$LATEST")
    assert error(exc)[0] == "InvalidParameterValueException"
    lam.delete_function(FunctionName="f", Qualifier="1")
    arns = [v["FunctionArn"] for v in
            lam.list_function_versions_by_capacity_provider(CapacityProviderName="cp")["FunctionVersions"]]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["$LATEST"]


def test_function_scaling_config(aws, stack: Stack, cp: dict, lam) -> None:
    aws.configure(version_active_delay_s=0.3)
    stack.function("f", provider_arn=cp["CapacityProviderArn"])
    lam.publish_version(FunctionName="f")
    got = lam.get_function_scaling_config(FunctionName="f", Qualifier="1")
    assert got["FunctionArn"].endswith(":function:f:1")
    assert got["AppliedFunctionScalingConfig"] == {"MinExecutionEnvironments": 3}
    put = lam.put_function_scaling_config(FunctionName="f", Qualifier="1", FunctionScalingConfig={
        "MinExecutionEnvironments": 5, "MaxExecutionEnvironments": 10})
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["FunctionState"] in ("Pending", "Active")
    got = lam.get_function_scaling_config(FunctionName="f", Qualifier="1")
    assert got["RequestedFunctionScalingConfig"] == {"MinExecutionEnvironments": 5, "MaxExecutionEnvironments": 10}
    assert got["AppliedFunctionScalingConfig"] == {"MinExecutionEnvironments": 3}
    time.sleep(0.4)
    assert lam.get_function_scaling_config(FunctionName="f", Qualifier="1")["AppliedFunctionScalingConfig"] == {
        "MinExecutionEnvironments": 5, "MaxExecutionEnvironments": 10}
    with pytest.raises(ClientError) as exc:
        lam.put_function_scaling_config(FunctionName="f", Qualifier="1", FunctionScalingConfig={
            "MinExecutionEnvironments": 5, "MaxExecutionEnvironments": 2})
    assert error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        lam.get_function_scaling_config(FunctionName="f", Qualifier="$LATEST")
    assert error(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        lam.get_function_scaling_config(FunctionName="f", Qualifier="9")
    assert error(exc)[0] == "ResourceNotFoundException"
    stack.function("plain")
    lam.publish_version(FunctionName="plain")
    with pytest.raises(ClientError) as exc:
        lam.put_function_scaling_config(FunctionName="plain", Qualifier="1",
                                        FunctionScalingConfig={"MinExecutionEnvironments": 1})
    assert error(exc)[:2] == ("AccessDeniedException", 403)


def test_default_functions_keep_moto_behaviour(stack: Stack, lam) -> None:
    created = stack.function("plain")
    assert "CapacityProviderConfig" not in created
    config = lam.get_function_configuration(FunctionName="plain")
    assert config["State"] == "Active"
    assert lam.publish_version(FunctionName="plain")["Version"] == "1"
    assert lam.delete_function(FunctionName="plain")["StatusCode"] == 204
