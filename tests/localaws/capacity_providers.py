"""Capacity providers: Create/Get/Update/Delete/List and ListFunctionVersionsByCapacityProvider.

Shapes follow botocore's Lambda model (``CapacityProvider`` structure, API version
2025-11-30); validation follows LMI-FACTS "Capacity provider API". States are computed
lazily from timestamps instead of by background threads: Pending until
``capacity_provider_active_delay_s`` after creation, then Active; Deleting for
``capacity_provider_delete_delay_s`` after DeleteCapacityProvider, then gone (404).
"""
from __future__ import annotations

import base64
import datetime
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import errors
from .state import CONFIG, LOCK, now, on_reset

NAME_RE = re.compile(r"^[a-zA-Z0-9-_]{1,140}$")
ARN_RE = re.compile(
    r"^arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:"
    r"(\d{12}):capacity-provider:([a-zA-Z0-9-_]+)$"
)
ROLE_ARN_RE = re.compile(r"^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
# The recorded TaggableResource pattern (aws-recorded/lambda-api_tag-exceptions_*.json).
TAGGABLE_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|"
    r"code-signing-config:csc-[a-z0-9]{17}|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|capacity-provider:[a-zA-Z0-9-_]+)"
)
ARCHITECTURES = ("x86_64", "arm64")
DEFAULT_MAX_VCPU = 400  # service default, LMI-FACTS
PROVIDERS_PER_ACCOUNT = 1000  # DG lambda-managed-instances-quotas


def lambda_timestamp() -> str:
    """Lambda's LastModified format, e.g. 2025-11-30T08:34:09.123+0000."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


@dataclass
class CapacityProvider:
    name: str
    arn: str
    vpc_config: dict[str, Any]
    permissions_config: dict[str, Any]
    instance_requirements: dict[str, Any]
    scaling_config: dict[str, Any]
    kms_key_arn: str | None
    propagate_tags: dict[str, Any] | None
    telemetry_config: dict[str, Any] | None
    tags: dict[str, str]
    active_at: float
    last_modified: str = field(default_factory=lambda_timestamp)
    gone_at: float | None = None  # set by DeleteCapacityProvider

    @property
    def architecture(self) -> str:
        return self.instance_requirements["Architectures"][0]

    def state(self) -> str:
        if self.gone_at is not None:
            return "Deleting"
        return "Active" if now() >= self.active_at else "Pending"

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CapacityProviderArn": self.arn,
            "State": self.state(),
            "VpcConfig": self.vpc_config,
            "PermissionsConfig": self.permissions_config,
            "InstanceRequirements": self.instance_requirements,
            "CapacityProviderScalingConfig": self.scaling_config,
            "LastModified": self.last_modified,
        }
        if self.kms_key_arn:
            out["KmsKeyArn"] = self.kms_key_arn
        if self.propagate_tags is not None:
            out["PropagateTags"] = self.propagate_tags
        if self.telemetry_config is not None:
            out["TelemetryConfig"] = self.telemetry_config
        return out


# (account, region) -> name -> provider
_PROVIDERS: dict[tuple[str, str], dict[str, CapacityProvider]] = {}


@on_reset
def _reset() -> None:
    _PROVIDERS.clear()


def _store(account: str, region: str) -> dict[str, CapacityProvider]:
    """The live providers of one account and region, with deleted ones purged."""
    store = _PROVIDERS.setdefault((account, region), {})
    t = now()
    for name in [n for n, p in store.items() if p.gone_at is not None and t >= p.gone_at]:
        del store[name]
    return store


def make_arn(account: str, region: str, name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:capacity-provider:{name}"


def _name_from(name_or_arn: str) -> str:
    m = ARN_RE.match(name_or_arn)
    return m.group(7) if m else name_or_arn


def find(account: str, region: str, name_or_arn: str) -> CapacityProvider | None:
    with LOCK:
        return _store(account, region).get(_name_from(name_or_arn))


def get_or_404(account: str, region: str, name_or_arn: str) -> CapacityProvider:
    provider = find(account, region, name_or_arn)
    if provider is None:
        arn = name_or_arn if ARN_RE.match(name_or_arn) else make_arn(account, region, name_or_arn)
        # Wording as recorded for TagResource on a missing provider.
        raise errors.not_found(f"Capacity provider not found: {arn}")
    return provider


# --- validation (LMI-FACTS "Capacity provider API"; constraints from the botocore model) ---

def _validate_name(name: Any) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise errors.constraint(
            name, "capacityProviderName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+ "
            "and have length between 1 and 140",
        )
    return name


def _validate_vpc_config(vpc: Any) -> dict[str, Any]:
    if not isinstance(vpc, dict):
        raise errors.constraint(None, "vpcConfig", "Member must not be null")
    subnets = vpc.get("SubnetIds")
    groups = vpc.get("SecurityGroupIds", [])
    if not isinstance(subnets, list):
        raise errors.constraint(None, "vpcConfig.subnetIds", "Member must not be null")
    if len(subnets) < 1:
        raise errors.constraint(subnets, "vpcConfig.subnetIds",
                                "Member must have length greater than or equal to 1")
    if len(subnets) > 16:
        raise errors.constraint(subnets, "vpcConfig.subnetIds",
                                "Member must have length less than or equal to 16")
    if not isinstance(groups, list):
        raise errors.constraint(groups, "vpcConfig.securityGroupIds", "Member must be a list")
    if len(groups) > 5:
        raise errors.constraint(groups, "vpcConfig.securityGroupIds",
                                "Member must have length less than or equal to 5")
    return {"SubnetIds": list(subnets), "SecurityGroupIds": list(groups)}


def _validate_permissions(perms: Any) -> dict[str, Any]:
    if not isinstance(perms, dict) or not perms.get("CapacityProviderOperatorRoleArn"):
        raise errors.constraint(None, "permissionsConfig.capacityProviderOperatorRoleArn",
                                "Member must not be null")
    role = perms["CapacityProviderOperatorRoleArn"]
    if not ROLE_ARN_RE.match(role):
        raise errors.constraint(
            role, "permissionsConfig.capacityProviderOperatorRoleArn",
            r"Member must satisfy regular expression pattern: "
            r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+",
        )
    return {"CapacityProviderOperatorRoleArn": role}


def _validate_instance_requirements(req: Any) -> dict[str, Any]:
    req = req or {}
    archs = req.get("Architectures") or ["x86_64"]
    if len(archs) != 1:
        raise errors.constraint(archs, "instanceRequirements.architectures",
                                "Member must have length less than or equal to 1")
    if archs[0] not in ARCHITECTURES:
        # Wording reported from real AWS for "X86_64".
        raise errors.constraint(archs, "instanceRequirements.architectures",
                                "[Member must satisfy enum value set: [x86_64, arm64]]")
    out: dict[str, Any] = {"Architectures": archs}
    allowed = req.get("AllowedInstanceTypes") or []
    excluded = req.get("ExcludedInstanceTypes") or []
    if allowed and excluded:
        # AWS lets you give one list or the other (API_InstanceRequirements); wording unconfirmed.
        raise errors.invalid_parameter(
            "AllowedInstanceTypes and ExcludedInstanceTypes can't be specified together. "
            "Specify only one of them."
        )
    for key, types in (("allowedInstanceTypes", allowed), ("excludedInstanceTypes", excluded)):
        if len(types) > 400:
            raise errors.constraint(f"[{len(types)} items]", f"instanceRequirements.{key}",
                                    "Member must have length less than or equal to 400")
    if "AllowedInstanceTypes" in req:
        out["AllowedInstanceTypes"] = allowed
    if "ExcludedInstanceTypes" in req:
        out["ExcludedInstanceTypes"] = excluded
    return out


def _validate_scaling(cfg: Any, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    cfg = cfg or {}
    out = dict(previous or {"MaxVCpuCount": DEFAULT_MAX_VCPU, "ScalingMode": "Auto"})
    if "MaxVCpuCount" in cfg:
        v = cfg["MaxVCpuCount"]
        if not isinstance(v, int) or not 2 <= v <= 15000:
            raise errors.constraint(v, "capacityProviderScalingConfig.maxVCpuCount",
                                    "Member must have value between 2 and 15000")
        out["MaxVCpuCount"] = v
    mode = cfg.get("ScalingMode", out.get("ScalingMode", "Auto"))
    if mode not in ("Auto", "Manual"):
        raise errors.constraint(mode, "capacityProviderScalingConfig.scalingMode",
                                "Member must satisfy enum value set: [Auto, Manual]")
    out["ScalingMode"] = mode
    policies = cfg.get("ScalingPolicies")
    if mode == "Auto":
        if policies:
            # Error text reported from real AWS (see README "Sources").
            raise errors.invalid_parameter(
                "A scaling policy can't be specified when the scalingMode is set to Auto")
        out.pop("ScalingPolicies", None)
    else:
        if policies is None:
            policies = out.get("ScalingPolicies")
        if not policies:
            raise errors.invalid_parameter(
                "At least one scaling policy must be specified when the scalingMode is set to Manual")
        if len(policies) > 10:
            raise errors.constraint(f"[{len(policies)} items]",
                                    "capacityProviderScalingConfig.scalingPolicies",
                                    "Member must have length less than or equal to 10")
        for i, policy in enumerate(policies):
            metric = policy.get("PredefinedMetricType")
            if metric not in ("LambdaCapacityProviderAverageCPUUtilization",
                              "LambdaCapacityProviderAverageGPUUtilization"):
                raise errors.constraint(
                    metric, f"capacityProviderScalingConfig.scalingPolicies.{i + 1}.member.predefinedMetricType",
                    "Member must satisfy enum value set: [LambdaCapacityProviderAverageCPUUtilization, "
                    "LambdaCapacityProviderAverageGPUUtilization]")
            target = policy.get("TargetValue")
            if not isinstance(target, (int, float)) or not 0 <= target <= 100:
                raise errors.constraint(
                    target, f"capacityProviderScalingConfig.scalingPolicies.{i + 1}.member.targetValue",
                    "Member must have value between 0 and 100")
        out["ScalingPolicies"] = policies
    return out


def _check_network(account: str, region: str, vpc: dict[str, Any]) -> None:
    """Subnets and security groups must exist in EC2 and share one VPC, as for a
    VPC-attached function (wording of Lambda's DescribeSubnets/DescribeSecurityGroups errors)."""
    from moto.ec2.exceptions import InvalidSubnetIdError
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[account][region]
    vpc_ids = set()
    for subnet_id in vpc["SubnetIds"]:
        try:
            vpc_ids.add(ec2.get_subnet(subnet_id).vpc_id)
        except InvalidSubnetIdError:
            raise errors.invalid_parameter(
                f"Error occurred while DescribeSubnets. EC2 Error Code: InvalidSubnetID.NotFound. "
                f"EC2 Error Message: The subnet ID '{subnet_id}' does not exist") from None
    for group_id in vpc["SecurityGroupIds"]:
        group = ec2.get_security_group_from_id(group_id)
        if group is None:
            raise errors.invalid_parameter(
                f"Error occurred while DescribeSecurityGroups. EC2 Error Code: InvalidGroup.NotFound. "
                f"EC2 Error Message: The security group '{group_id}' does not exist")
        vpc_ids.add(group.vpc_id)
    if len(vpc_ids) > 1:
        raise errors.invalid_parameter(
            "The provided subnets and security groups must all belong to the same VPC. "
            f"Found: {sorted(vpc_ids)}")


def _check_operator_role(account: str, role_arn: str) -> None:
    """The operator role must exist and trust lambda.amazonaws.com (LMI-FACTS "IAM").
    AWS answers InvalidParameterValueException while a new role propagates, which is why
    callers retry on it; here there is no propagation, so the error is final."""
    from moto.iam.exceptions import NotFoundException as IAMNotFoundException
    from moto.iam.models import iam_backends

    message = (f"The provided CapacityProviderOperatorRoleArn {role_arn} cannot be assumed by Lambda. "
               "Check that the role exists and trusts lambda.amazonaws.com.")
    try:
        role = iam_backends[account]["aws"].get_role_by_arn(role_arn)
    except IAMNotFoundException:
        raise errors.invalid_parameter(message) from None
    if "lambda.amazonaws.com" not in unquote(role.assume_role_policy_document or ""):
        raise errors.invalid_parameter(message)


# --- the operations ---

def create(account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
    name = _validate_name(body.get("CapacityProviderName"))
    vpc = _validate_vpc_config(body.get("VpcConfig"))
    perms = _validate_permissions(body.get("PermissionsConfig"))
    reqs = _validate_instance_requirements(body.get("InstanceRequirements"))
    scaling = _validate_scaling(body.get("CapacityProviderScalingConfig"))
    with LOCK:
        store = _store(account, region)
        if name in store:
            raise errors.conflict(f"Capacity provider already exists: {make_arn(account, region, name)}")
        if len(store) >= PROVIDERS_PER_ACCOUNT:
            raise errors.limit_exceeded("CapacityProviderLimitExceededException",
                                        f"You have reached the limit of {PROVIDERS_PER_ACCOUNT} capacity providers.")
        _check_network(account, region, vpc)
        _check_operator_role(account, perms["CapacityProviderOperatorRoleArn"])
        provider = CapacityProvider(
            name=name,
            arn=make_arn(account, region, name),
            vpc_config=vpc,
            permissions_config=perms,
            instance_requirements=reqs,
            scaling_config=scaling,
            kms_key_arn=body.get("KmsKeyArn"),
            propagate_tags=body.get("PropagateTags"),
            telemetry_config=body.get("TelemetryConfig"),
            tags=dict(body.get("Tags") or {}),
            active_at=now() + CONFIG["capacity_provider_active_delay_s"],
        )
        store[name] = provider
    # Make sure moto's Lambda backend exists for this account and region: the Resource
    # Groups Tagging API only asks backends that are in use (see server.install).
    from moto.awslambda.utils import get_backend
    get_backend(account, region)
    return {"CapacityProvider": provider.to_api()}


def get(account: str, region: str, name: str) -> dict[str, Any]:
    with LOCK:
        return {"CapacityProvider": get_or_404(account, region, name).to_api()}


def update(account: str, region: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Only the scaling config, PropagateTags and TelemetryConfig can change (LMI-FACTS)."""
    with LOCK:
        provider = get_or_404(account, region, name)
        if provider.state() == "Deleting":
            raise errors.conflict(f"Capacity provider {provider.arn} is being deleted.")
        if "CapacityProviderScalingConfig" in body:
            provider.scaling_config = _validate_scaling(
                body["CapacityProviderScalingConfig"], provider.scaling_config)
        if "PropagateTags" in body:
            provider.propagate_tags = body["PropagateTags"]
        if "TelemetryConfig" in body:
            provider.telemetry_config = body["TelemetryConfig"]
        provider.last_modified = lambda_timestamp()
        return {"CapacityProvider": provider.to_api()}


def delete(account: str, region: str, name: str) -> dict[str, Any]:
    from .functions import versions_using_provider

    with LOCK:
        provider = get_or_404(account, region, name)
        if provider.gone_at is None:
            if versions_using_provider(account, region, provider.arn):
                raise errors.conflict(
                    f"The capacity provider {provider.arn} is in use by one or more function versions. "
                    "To delete it, first remove its association with every function version "
                    "(delete the functions or versions that use it).")
            provider.gone_at = now() + CONFIG["capacity_provider_delete_delay_s"]
        return {"CapacityProvider": provider.to_api()}


def _page(items: list[Any], marker: str | None, max_items: str | None) -> tuple[list[Any], str | None]:
    """Marker/MaxItems pagination (MaxItems 1-50). The marker is an opaque offset."""
    try:
        size = int(max_items) if max_items else 50
    except ValueError:
        raise errors.constraint(max_items, "maxItems", "Member must be a number") from None
    if not 1 <= size <= 50:
        raise errors.constraint(size, "maxItems", "Member must have value between 1 and 50")
    start = 0
    if marker:
        try:
            start = int(base64.urlsafe_b64decode(marker.encode()).decode())
        except Exception:
            raise errors.invalid_parameter("Invalid Marker.") from None
    page = items[start:start + size]
    end = start + size
    next_marker = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return page, next_marker


def list_providers(account: str, region: str, query: dict[str, list[str]]) -> dict[str, Any]:
    state = (query.get("State") or [None])[0]
    with LOCK:
        providers = sorted(_store(account, region).values(), key=lambda p: p.name)
        shapes = [p.to_api() for p in providers]
    if state:
        shapes = [s for s in shapes if s["State"] == state]
    page, marker = _page(shapes, (query.get("Marker") or [None])[0], (query.get("MaxItems") or [None])[0])
    out: dict[str, Any] = {"CapacityProviders": page}
    if marker:
        out["NextMarker"] = marker
    return out


def list_function_versions(account: str, region: str, name: str, query: dict[str, list[str]]) -> dict[str, Any]:
    from .functions import versions_using_provider

    with LOCK:
        provider = get_or_404(account, region, name)
        versions = [{"FunctionArn": arn, "State": state}
                    for arn, state in versions_using_provider(account, region, provider.arn)]
    page, marker = _page(versions, (query.get("Marker") or [None])[0], (query.get("MaxItems") or [None])[0])
    out: dict[str, Any] = {"CapacityProviderArn": provider.arn, "FunctionVersions": page}
    if marker:
        out["NextMarker"] = marker
    return out


# --- tagging of capacity-provider ARNs (TagResource / UntagResource / ListTags) ---

def is_capacity_provider_arn(arn: str) -> bool:
    return ":capacity-provider:" in arn


def _tag_target(account: str, region: str, arn: str) -> CapacityProvider:
    if not ARN_RE.match(arn):
        raise errors.validation(
            f"1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {TAGGABLE_PATTERN}")
    m = ARN_RE.match(arn)
    assert m is not None
    provider = find(m.group(6), region, arn) if m.group(6) == account else None
    if provider is None:
        raise errors.not_found(f"Capacity provider not found: {arn}")
    return provider


def tag(account: str, region: str, arn: str, tags: dict[str, str]) -> None:
    with LOCK:
        _tag_target(account, region, arn).tags.update(tags)


def untag(account: str, region: str, arn: str, keys: list[str]) -> None:
    with LOCK:
        provider = _tag_target(account, region, arn)
        for key in keys:
            provider.tags.pop(key, None)


def list_tags(account: str, region: str, arn: str) -> dict[str, str]:
    with LOCK:
        return dict(_tag_target(account, region, arn).tags)


def tagged_resources(account: str, region: str) -> list[tuple[str, dict[str, str]]]:
    """For the Resource Groups Tagging API (GetResources)."""
    with LOCK:
        return [(p.arn, dict(p.tags)) for p in _store(account, region).values()]


def json_body(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise errors.LambdaApiError("SerializationException", "Could not parse the request body as JSON", 400,
                                    user=None) from None
    return body if isinstance(body, dict) else {}
