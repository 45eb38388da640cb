"""Capacity providers: shapes, states, validation and errors (LMI-FACTS "Capacity provider API")."""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from .conftest import Stack, wait_for


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    e = exc.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"], e["Error"]["Message"]


def test_create_is_pending_then_active_with_the_model_shape(stack: Stack, lam) -> None:
    resp = lam.create_capacity_provider(
        CapacityProviderName="cp-1",
        VpcConfig={"SubnetIds": stack.subnets, "SecurityGroupIds": [stack.sg]},
        PermissionsConfig={"CapacityProviderOperatorRoleArn": stack.operator_role},
        Tags={"lmi:stack": "demo"},
    )
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    cp = resp["CapacityProvider"]
    assert cp["State"] == "Pending"
    assert cp["CapacityProviderArn"] == "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp-1"
    assert cp["VpcConfig"] == {"SubnetIds": stack.subnets, "SecurityGroupIds": [stack.sg]}
    assert cp["PermissionsConfig"] == {"CapacityProviderOperatorRoleArn": stack.operator_role}
    assert cp["InstanceRequirements"] == {"Architectures": ["x86_64"]}
    assert cp["CapacityProviderScalingConfig"] == {"MaxVCpuCount": 400, "ScalingMode": "Auto"}
    assert cp["LastModified"].endswith("+0000")
    time.sleep(0.3)  # default capacity_provider_active_delay_s is 0.2
    assert lam.get_capacity_provider(CapacityProviderName="cp-1")["CapacityProvider"]["State"] == "Active"
    # Get also accepts the ARN.
    assert lam.get_capacity_provider(CapacityProviderName=cp["CapacityProviderArn"])["CapacityProvider"]["State"] == "Active"


def test_active_delay_is_configurable(aws, stack: Stack, lam) -> None:
    aws.configure(capacity_provider_active_delay_s=0.8)
    stack.provider("slow", wait=False)
    time.sleep(0.3)
    assert lam.get_capacity_provider(CapacityProviderName="slow")["CapacityProvider"]["State"] == "Pending"
    wait_for(lambda: lam.get_capacity_provider(CapacityProviderName="slow")["CapacityProvider"]["State"] == "Active")


def test_optional_members_are_kept(stack: Stack) -> None:
    cp = stack.provider(
        "full", wait=False,
        InstanceRequirements={"Architectures": ["arm64"], "AllowedInstanceTypes": ["m7g.large"]},
        CapacityProviderScalingConfig={"MaxVCpuCount": 16, "ScalingMode": "Manual", "ScalingPolicies": [
            {"PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization", "TargetValue": 60.0}]},
        KmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/abc",
        PropagateTags={"Mode": "Explicit", "ExplicitTags": {"a": "b"}},
    )
    assert cp["InstanceRequirements"] == {"Architectures": ["arm64"], "AllowedInstanceTypes": ["m7g.large"]}
    assert cp["CapacityProviderScalingConfig"]["ScalingMode"] == "Manual"
    assert cp["CapacityProviderScalingConfig"]["ScalingPolicies"][0]["TargetValue"] == 60.0
    assert cp["KmsKeyArn"].startswith("arn:aws:kms:")
    assert cp["PropagateTags"]["Mode"] == "Explicit"


def test_duplicate_name_is_a_conflict(stack: Stack) -> None:
    stack.provider("dup", wait=False)
    with pytest.raises(ClientError) as exc:
        stack.provider("dup", wait=False)
    code, status, _ = error(exc)
    assert (code, status) == ("ResourceConflictException", 409)


@pytest.mark.parametrize("op", ["get", "update", "delete", "list_versions"])
def test_missing_provider_is_not_found(lam, op: str) -> None:
    calls = {
        "get": lambda: lam.get_capacity_provider(CapacityProviderName="nope"),
        "update": lambda: lam.update_capacity_provider(CapacityProviderName="nope",
                                                       CapacityProviderScalingConfig={"MaxVCpuCount": 8}),
        "delete": lambda: lam.delete_capacity_provider(CapacityProviderName="nope"),
        "list_versions": lambda: lam.list_function_versions_by_capacity_provider(CapacityProviderName="nope"),
    }
    with pytest.raises(ClientError) as exc:
        calls[op]()
    code, status, message = error(exc)
    assert (code, status) == ("ResourceNotFoundException", 404)
    assert message == "Capacity provider not found: arn:aws:lambda:us-east-1:123456789012:capacity-provider:nope"
    # The error body is Lambda's: the message in "Message", Type User.
    assert exc.value.response["Type"] == "User"


def test_subnets_and_security_groups_must_exist_in_ec2(stack: Stack, aws) -> None:
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, VpcConfig={"SubnetIds": ["subnet-0123456789abcdef0"], "SecurityGroupIds": [stack.sg]})
    code, status, message = error(exc)
    assert (code, status) == ("InvalidParameterValueException", 400)
    assert "InvalidSubnetID.NotFound" in message and "subnet-0123456789abcdef0" in message
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, VpcConfig={"SubnetIds": stack.subnets, "SecurityGroupIds": ["sg-0123456789abcdef0"]})
    assert error(exc)[0] == "InvalidParameterValueException"
    assert "InvalidGroup.NotFound" in error(exc)[2]
    # A security group of another VPC.
    ec2 = aws.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    other_sg = ec2.create_security_group(VpcId=other, GroupName="o", Description="o")["GroupId"]
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, VpcConfig={"SubnetIds": stack.subnets, "SecurityGroupIds": [other_sg]})
    assert "same VPC" in error(exc)[2]


def test_operator_role_must_exist_and_trust_lambda(stack: Stack, aws) -> None:
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, PermissionsConfig={
            "CapacityProviderOperatorRoleArn": "arn:aws:iam::123456789012:role/missing"})
    assert error(exc)[:2] == ("InvalidParameterValueException", 400)
    iam = aws.client("iam")
    ec2_trust = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                 '"Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}')
    arn = iam.create_role(RoleName="ec2-only", AssumeRolePolicyDocument=ec2_trust)["Role"]["Arn"]
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, PermissionsConfig={"CapacityProviderOperatorRoleArn": arn})
    assert error(exc)[0] == "InvalidParameterValueException"


def test_list_sizes_are_validated(stack: Stack) -> None:
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, VpcConfig={"SubnetIds": [f"subnet-{i:017x}" for i in range(17)],
                                                   "SecurityGroupIds": []})
    code, status, message = error(exc)
    assert (code, status) == ("ValidationException", 400)
    assert "less than or equal to 16" in message
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, VpcConfig={"SubnetIds": stack.subnets,
                                                   "SecurityGroupIds": [stack.sg] * 6})
    assert "less than or equal to 5" in error(exc)[2]
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, InstanceRequirements={"Architectures": ["x86_64", "arm64"]})
    assert error(exc)[0] == "ValidationException"
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, InstanceRequirements={"Architectures": ["X86_64"]})
    assert "[x86_64, arm64]" in error(exc)[2]
    with pytest.raises(ClientError) as exc:
        stack.provider("bad name!", wait=False)
    assert error(exc)[0] == "ValidationException"


def test_allowed_and_excluded_instance_types_are_exclusive(stack: Stack) -> None:
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, InstanceRequirements={
            "Architectures": ["x86_64"], "AllowedInstanceTypes": ["m7i.large"], "ExcludedInstanceTypes": ["c7i.large"]})
    assert error(exc)[:2] == ("InvalidParameterValueException", 400)


def test_scaling_config_rules(stack: Stack) -> None:
    policy = [{"PredefinedMetricType": "LambdaCapacityProviderAverageCPUUtilization", "TargetValue": 50.0}]
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, CapacityProviderScalingConfig={"ScalingMode": "Auto", "ScalingPolicies": policy})
    assert error(exc)[2] == "A scaling policy can't be specified when the scalingMode is set to Auto"
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, CapacityProviderScalingConfig={"ScalingMode": "Manual"})
    assert error(exc)[0] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as exc:
        stack.provider("x", wait=False, CapacityProviderScalingConfig={"MaxVCpuCount": 20000})
    assert error(exc)[0] == "ValidationException"


def test_update_changes_only_scaling_and_tags_config(stack: Stack, lam) -> None:
    stack.provider("up")
    resp = lam.update_capacity_provider(CapacityProviderName="up", CapacityProviderScalingConfig={"MaxVCpuCount": 32})
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert resp["CapacityProvider"]["CapacityProviderScalingConfig"] == {"MaxVCpuCount": 32, "ScalingMode": "Auto"}
    got = lam.get_capacity_provider(CapacityProviderName="up")["CapacityProvider"]
    assert got["CapacityProviderScalingConfig"]["MaxVCpuCount"] == 32
    lam.delete_capacity_provider(CapacityProviderName="up")
    with pytest.raises(ClientError) as exc:
        lam.update_capacity_provider(CapacityProviderName="up", CapacityProviderScalingConfig={"MaxVCpuCount": 8})
    assert error(exc)[0] == "ResourceConflictException"


def test_list_paginates_and_filters_by_state(aws, stack: Stack, lam) -> None:
    for i in range(3):
        stack.provider(f"p{i}", wait=False)
    time.sleep(0.3)
    aws.configure(capacity_provider_active_delay_s=30)
    stack.provider("p3", wait=False)
    first = lam.list_capacity_providers(MaxItems=2)
    assert [p["CapacityProviderArn"].rsplit(":", 1)[1] for p in first["CapacityProviders"]] == ["p0", "p1"]
    second = lam.list_capacity_providers(MaxItems=2, Marker=first["NextMarker"])
    assert [p["CapacityProviderArn"].rsplit(":", 1)[1] for p in second["CapacityProviders"]] == ["p2", "p3"]
    assert "NextMarker" not in second
    pending = lam.list_capacity_providers(State="Pending")["CapacityProviders"]
    assert [p["CapacityProviderArn"].rsplit(":", 1)[1] for p in pending] == ["p3"]
    paginator = lam.get_paginator("list_capacity_providers")
    names = [p["CapacityProviderArn"] for page in paginator.paginate(PaginationConfig={"PageSize": 1})
             for p in page["CapacityProviders"]]
    assert len(names) == 4


def test_delete_goes_through_deleting_then_gone(aws, stack: Stack, lam) -> None:
    aws.configure(capacity_provider_delete_delay_s=0.4)
    stack.provider("del")
    resp = lam.delete_capacity_provider(CapacityProviderName="del")
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert resp["CapacityProvider"]["State"] == "Deleting"
    assert lam.get_capacity_provider(CapacityProviderName="del")["CapacityProvider"]["State"] == "Deleting"
    time.sleep(0.5)
    with pytest.raises(ClientError) as exc:
        lam.get_capacity_provider(CapacityProviderName="del")
    assert error(exc)[0] == "ResourceNotFoundException"
    # The name is free again.
    stack.provider("del", wait=False)


def test_delete_in_use_is_a_conflict_until_the_function_is_deleted(stack: Stack, lam) -> None:
    cp = stack.provider("used")
    stack.function("f", provider_arn=cp["CapacityProviderArn"])
    lam.publish_version(FunctionName="f")
    versions = lam.list_function_versions_by_capacity_provider(CapacityProviderName="used")
    assert versions["CapacityProviderArn"] == cp["CapacityProviderArn"]
    assert [v["FunctionArn"].rsplit(":", 1)[1] for v in versions["FunctionVersions"]] == ["$LATEST", "1"]
    assert versions["FunctionVersions"][0]["State"] == "ActiveNonInvocable"
    with pytest.raises(ClientError) as exc:
        lam.delete_capacity_provider(CapacityProviderName="used")
    code, status, message = error(exc)
    assert (code, status) == ("ResourceConflictException", 409)
    assert "first remove its association" in message
    resp = lam.delete_function(FunctionName="f")
    assert resp["StatusCode"] == 202  # LMI deletes are asynchronous in AWS
    assert lam.list_function_versions_by_capacity_provider(CapacityProviderName="used")["FunctionVersions"] == []
    assert lam.delete_capacity_provider(CapacityProviderName="used")["CapacityProvider"]["State"] == "Deleting"


def test_tags_on_capacity_provider_arns(aws, stack: Stack, lam) -> None:
    arn = stack.provider("tagged", wait=False, Tags={"lmi:stack": "demo"})["CapacityProviderArn"]
    assert lam.list_tags(Resource=arn)["Tags"] == {"lmi:stack": "demo"}
    lam.tag_resource(Resource=arn, Tags={"team": "x"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"lmi:stack": "demo", "team": "x"}
    lam.untag_resource(Resource=arn, TagKeys=["team"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"lmi:stack": "demo"}
    # Discoverable by tag through the Resource Groups Tagging API.
    tagging = aws.client("resourcegroupstaggingapi")
    found = tagging.get_resources(TagFilters=[{"Key": "lmi:stack", "Values": ["demo"]}])["ResourceTagMappingList"]
    assert arn in [r["ResourceARN"] for r in found]
    # Errors as recorded from AWS (aws-recorded/lambda-api_tag-exceptions_capacity-provider.json).
    missing = arn.replace("tagged", "missing")
    for call in (lambda: lam.list_tags(Resource=missing),
                 lambda: lam.tag_resource(Resource=missing, Tags={"a": "b"}),
                 lambda: lam.untag_resource(Resource=missing, TagKeys=["a"])):
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == ("ResourceNotFoundException", 404, f"Capacity provider not found: {missing}")
    with pytest.raises(ClientError) as exc:
        lam.list_tags(Resource=arn + ":alias")
    assert error(exc)[:2] == ("ValidationException", 400)
