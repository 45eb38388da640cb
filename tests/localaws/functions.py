"""Lambda functions on a capacity provider (LMI), layered on moto's Lambda.

moto stores functions as ``LambdaFunction`` objects (``$LATEST`` plus copies for
published versions) and drops ``CapacityProviderConfig``. We keep moto's storage and
add attributes to those objects:

- ``lmi_cpc``: the stored CapacityProviderConfig (absent on default functions);
- ``lmi_active_at``: when a published LMI version leaves Pending;
- ``lmi_update_done_at``: when LastUpdateStatus leaves InProgress;
- ``lmi_revision`` / ``lmi_published_revision``: detect "nothing changed" on publish;
- ``lmi_scaling``: the requested/applied function scaling config of a published version.

Behaviour and sources (LMI-FACTS "Functions on a capacity provider", DG
lambda-managed-instances-version-publishing, LocalStack's AWS-validated LMI code for
error texts where noted in README.md).
"""
from __future__ import annotations

import copy
import json
import re
from typing import Any, Iterator
from urllib.parse import unquote

from moto.awslambda.exceptions import FunctionAlreadyExists, UnknownFunctionException
from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend, make_function_arn

from . import capacity_providers, errors
from .capacity_providers import lambda_timestamp
from .state import CONFIG, LOCK, now

LATEST = "$LATEST"
LATEST_PUBLISHED = "$LATEST.PUBLISHED"
LMI_MIN_MEMORY_MB = 2048
LMI_MAX_MEMORY_MB = 32768
VERSIONS_PER_PROVIDER = 100  # DG lambda-managed-instances-quotas
QUALIFIER_RE = re.compile(r"^(\$LATEST\.PUBLISHED|[0-9]+)$")
_RUNTIME_RE = re.compile(r"^(nodejs|python|java|dotnet)(\d+)(?:\.(\d+))?(?:\.x)?$")
# Minimum versions per family (DG lambda-managed-instances-runtimes): Node.js 22+,
# Python 3.13+, Java 21+, .NET 8+, and the OS-only provided.al2023.
_MIN_RUNTIME = {"nodejs": (22, 0), "python": (3, 13), "java": (21, 0), "dotnet": (8, 0)}
# Default PerExecutionEnvironmentMaxConcurrency per vCPU (LMI-FACTS).
_CONCURRENCY_PER_VCPU = {"nodejs": 64, "java": 32, "dotnet": 32, "python": 16}


def is_lmi(fn: Any) -> bool:
    return getattr(fn, "lmi_cpc", None) is not None


def lmi_runtime_supported(runtime: str | None) -> bool:
    if runtime == "provided.al2023":
        return True
    m = _RUNTIME_RE.match(runtime or "")
    if not m:
        return False
    family, major, minor = m.group(1), int(m.group(2)), int(m.group(3) or 0)
    return (major, minor) >= _MIN_RUNTIME[family]


def _inner(fn: Any) -> dict[str, Any]:
    return fn.lmi_cpc["LambdaManagedInstancesCapacityProviderConfig"]


def vcpus(fn: Any) -> int:
    ratio = float(_inner(fn).get("ExecutionEnvironmentMemoryGiBPerVCpu", 2.0))
    return max(1, int(fn.memory_size // (ratio * 1024)))


def max_concurrency(fn: Any) -> int:
    """PerExecutionEnvironmentMaxConcurrency, or the runtime's default per vCPU times vCPUs."""
    given = _inner(fn).get("PerExecutionEnvironmentMaxConcurrency")
    if given:
        return int(given)
    m = _RUNTIME_RE.match(fn.run_time or "")
    per_vcpu = _CONCURRENCY_PER_VCPU.get(m.group(1) if m else "", 16)
    return per_vcpu * vcpus(fn)


def effective_cpc(fn: Any) -> dict[str, Any]:
    inner = dict(_inner(fn))
    inner.setdefault("ExecutionEnvironmentMemoryGiBPerVCpu", 2.0)
    inner["PerExecutionEnvironmentMaxConcurrency"] = max_concurrency(fn)
    return {"LambdaManagedInstancesCapacityProviderConfig": inner}


def version_state(fn: Any) -> str:
    if not is_lmi(fn):
        return fn.state
    if str(fn.version) == LATEST:
        # $LATEST of an LMI function is never invocable (LMI-FACTS; LocalStack PR 13656).
        return "ActiveNonInvocable"
    return "Pending" if now() < fn.lmi_active_at else "Active"


def update_in_progress(fn: Any) -> bool:
    done = getattr(fn, "lmi_update_done_at", None)
    return done is not None and now() < done


# --- moto patch: configuration output ---

_orig_get_configuration = LambdaFunction.get_configuration


def get_configuration(self: LambdaFunction, on_create: bool = False) -> dict[str, Any]:
    config = _orig_get_configuration(self, on_create)
    if not on_create and update_in_progress(self):
        config["LastUpdateStatus"] = "InProgress"
        config["LastUpdateStatusReason"] = "The function is being updated."
    if is_lmi(self):
        config["CapacityProviderConfig"] = effective_cpc(self)
        config.pop("SnapStart", None)  # not returned for LMI functions (LocalStack parity code)
        state = version_state(self)
        config["State"] = state
        if state == "Pending":
            config["StateReason"] = "The function is being created."
            config["StateReasonCode"] = "Creating"
    return config


# --- validation of an LMI configuration (create and update) ---

def _validate_lmi(
    account: str, region: str, *, cpc: Any, runtime: str | None, package_type: str,
    memory: int, architectures: list[str],
) -> dict[str, Any]:
    """Returns the CapacityProviderConfig to store, or raises AWS's error."""
    inner = cpc.get("LambdaManagedInstancesCapacityProviderConfig") if isinstance(cpc, dict) else None
    if not isinstance(inner, dict):
        raise errors.constraint(None, "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig",
                                "Member must not be null")
    arn = inner.get("CapacityProviderArn")
    if not isinstance(arn, str) or not capacity_providers.ARN_RE.match(arn):
        raise errors.constraint(
            arn, "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig.capacityProviderArn",
            "Member must satisfy regular expression pattern: "
            r"arn:aws[a-zA-Z-]*:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
            r"capacity-provider:[a-zA-Z0-9-_]+")
    provider = capacity_providers.find(account, region, arn)
    if provider is None:
        raise errors.not_found(f"Capacity provider not found: {arn}")
    if provider.state() == "Deleting":
        raise errors.conflict(f"Capacity provider {arn} is being deleted.")
    if package_type != "Image" and not lmi_runtime_supported(runtime):
        # Wording from LMI-FACTS (seen through CloudFormation and in LocalStack).
        raise errors.invalid_parameter(
            f"Runtime Enum {runtime} does not support specified feature: Lambda Managed Instances")
    if memory < LMI_MIN_MEMORY_MB:
        # Wording reported from real AWS (README "Sources").
        raise errors.validation(
            f"Lambda Managed Instance functions must have memory size greater than or equal to {LMI_MIN_MEMORY_MB}")
    if memory > LMI_MAX_MEMORY_MB:
        raise errors.validation(
            f"Lambda Managed Instance functions must have memory size less than or equal to {LMI_MAX_MEMORY_MB}")
    ratio = inner.get("ExecutionEnvironmentMemoryGiBPerVCpu", 2.0)
    if ratio not in (2, 4, 8):
        raise errors.invalid_parameter(
            f"ExecutionEnvironmentMemoryGiBPerVCpu must be 2, 4 or 8, got {ratio}.")
    per_vcpu_mb = float(ratio) * 1024
    if memory < per_vcpu_mb:
        # The first sentence is AWS's (LMI-FACTS); the rest is ours.
        raise errors.invalid_parameter(
            f"Memory ratio of {per_vcpu_mb}MB per CPU exceeds function's total memory of {memory}MB.")
    if memory % per_vcpu_mb:
        # DG best-practices: vCPUs = memory / ratio must be whole. Wording unconfirmed.
        raise errors.invalid_parameter(
            f"Function's total memory of {memory}MB must be a multiple of the memory ratio of "
            f"{per_vcpu_mb}MB per CPU.")
    concurrency = inner.get("PerExecutionEnvironmentMaxConcurrency")
    if concurrency is not None and (not isinstance(concurrency, int) or not 1 <= concurrency <= 1600):
        raise errors.constraint(
            concurrency,
            "capacityProviderConfig.lambdaManagedInstancesCapacityProviderConfig.perExecutionEnvironmentMaxConcurrency",
            "Member must have value between 1 and 1600")
    arch = (architectures or ["x86_64"])[0]
    if arch != provider.architecture:
        # LMI-FACTS: must match (wording unconfirmed).
        raise errors.invalid_parameter(
            f"The function's architecture ({arch}) doesn't match the architecture of capacity provider "
            f"{arn} ({provider.architecture}).")
    stored = {"CapacityProviderArn": arn, "ExecutionEnvironmentMemoryGiBPerVCpu": float(ratio)}
    if concurrency is not None:
        stored["PerExecutionEnvironmentMaxConcurrency"] = concurrency
    return {"LambdaManagedInstancesCapacityProviderConfig": stored}


def _validate_publish_to(publish_to: Any, lmi: bool) -> None:
    if publish_to is None:
        return
    if publish_to != "LATEST_PUBLISHED":
        raise errors.constraint(publish_to, "publishTo", "Member must satisfy enum value set: [LATEST_PUBLISHED]")
    if not lmi:
        # Wording unconfirmed: $LATEST.PUBLISHED exists only for LMI functions.
        raise errors.invalid_parameter(
            "PublishTo is only supported for functions with a capacity provider configuration.")


def _updating_conflict(fn: Any) -> errors.LambdaApiError:
    # AWS's text while LastUpdateStatus is InProgress.
    return errors.conflict(
        "The operation cannot be performed at this time. An update is in progress for resource: "
        f"{make_function_arn(fn.region, fn.account_id, fn.function_name)}")


# --- publishing ---

def publish(backend: Any, name: str, description: str = "", publish_to: str | None = None) -> Any:
    """PublishVersion for both kinds; LMI versions get their own state and environments."""
    from . import invoke

    storage = backend._lambdas
    latest = storage.get_function_by_name_or_arn_forbid_qualifier(name)
    if update_in_progress(latest):
        raise _updating_conflict(latest)
    if not is_lmi(latest):
        _validate_publish_to(publish_to, lmi=False)
        return backend.publish_version(name, description)
    _validate_publish_to(publish_to, lmi=True)
    with LOCK:
        group = storage._functions[latest.function_name]
        versions = group["versions"]
        revision = getattr(latest, "lmi_revision", 1)
        existing = None
        if publish_to == "LATEST_PUBLISHED":
            qualifier = LATEST_PUBLISHED
            existing = next((v for v in versions if str(v.version) == LATEST_PUBLISHED), None)
            if existing is not None and existing.lmi_published_revision == revision:
                return existing
        else:
            numbered = [v for v in versions if str(v.version).isdigit()]
            if numbered and numbered[-1].lmi_published_revision == revision:
                return numbered[-1]  # nothing changed: AWS returns the last version
            qualifier = str(getattr(latest, "lmi_next_version", 1))
        provider_arn = _inner(latest)["CapacityProviderArn"]
        in_use = [a for a, _ in versions_using_provider(latest.account_id, latest.region, provider_arn)
                  if not a.endswith(":" + LATEST)]
        if existing is None and len(in_use) >= VERSIONS_PER_PROVIDER:
            raise errors.limit_exceeded(
                "FunctionVersionsPerCapacityProviderLimitExceededException",
                f"The capacity provider {provider_arn} already has {VERSIONS_PER_PROVIDER} function versions.")
        provider = capacity_providers.find(latest.account_id, latest.region, provider_arn)
        version = copy.copy(latest)
        version.version = qualifier
        version.function_arn = make_function_arn(latest.region, latest.account_id, latest.function_name) + ":" + qualifier
        version.last_modified = lambda_timestamp()
        if description:
            version.description = description
        version.lmi_published_revision = revision
        version.lmi_update_done_at = None
        # Environments start at publish; the version is Active once they run, and not
        # before its capacity provider is (LMI-FACTS "Functions on a capacity provider").
        version.lmi_active_at = max(now() + CONFIG["version_active_delay_s"],
                                    provider.active_at if provider else 0.0)
        version.lmi_scaling = getattr(existing, "lmi_scaling", None)
        if existing is not None:
            versions.remove(existing)
            invoke.retire_pools(latest.account_id, latest.region, latest.function_name, LATEST_PUBLISHED)
        else:
            if qualifier.isdigit():
                latest.lmi_next_version = int(qualifier) + 1
        versions.append(version)
        storage._arns[version.function_arn] = version
        invoke.ensure_lmi_pool(version)
        return version


def versions_using_provider(account: str, region: str, provider_arn: str) -> list[tuple[str, str]]:
    """(qualified function ARN, State) of every version associated with the provider."""
    out = []
    for group in list(get_backend(account, region)._lambdas._functions.values()):
        latest = group["latest"]
        for fn in ([latest] if latest else []) + list(group["versions"]):
            if is_lmi(fn) and _inner(fn)["CapacityProviderArn"] == provider_arn:
                arn = fn.function_arn if str(fn.version) != LATEST else fn.function_arn + ":" + LATEST
                out.append((arn, version_state(fn)))
    return out


def iter_lmi_versions(account: str, region: str) -> Iterator[Any]:
    for group in list(get_backend(account, region)._lambdas._functions.values()):
        for fn in group["versions"]:
            if is_lmi(fn):
                yield fn


# --- Lambda operations (installed as LambdaResponse methods by server.py) ---

def _json(resp: Any) -> dict[str, Any]:
    return capacity_providers.json_body(resp.body)


def _query(resp: Any, key: str) -> str | None:
    value = resp.querystring.get(key)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def create_function(resp: Any) -> Any:
    body = _json(resp)
    backend = resp.backend
    cpc = body.get("CapacityProviderConfig")
    spec = {k: v for k, v in body.items() if k not in ("Publish", "PublishTo", "CapacityProviderConfig")}
    _validate_publish_to(body.get("PublishTo"), lmi=cpc is not None)
    stored_cpc = None
    if cpc is not None:
        spec.setdefault("MemorySize", LMI_MIN_MEMORY_MB)
        stored_cpc = _validate_lmi(
            resp.current_account, resp.region, cpc=cpc, runtime=spec.get("Runtime"),
            package_type=spec.get("PackageType", "Zip"), memory=spec["MemorySize"],
            architectures=spec.get("Architectures") or ["x86_64"])
    name = str(body.get("FunctionName", "")).rsplit(":", 1)[-1]
    try:
        backend.get_function(name, None)
        raise FunctionAlreadyExists(name)
    except UnknownFunctionException:
        pass
    fn = backend.create_function(spec)
    if stored_cpc is not None:
        fn.lmi_cpc = stored_cpc
        fn.lmi_revision = 1
    config = fn.get_configuration(on_create=True)
    if stored_cpc is not None:
        # The CreateFunction response still shows the creation (LocalStack's AWS-parity code);
        # reads right after show ActiveNonInvocable.
        config.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
    if body.get("Publish"):
        version = publish(backend, name, "", body.get("PublishTo"))
        config["Version"] = str(version.version)
    return 201, {"status": 201}, json.dumps(config)


def publish_version(resp: Any) -> Any:
    name = unquote(resp.path.split("/")[-2])
    body = _json(resp)
    version = publish(resp.backend, name, body.get("Description") or "", body.get("PublishTo"))
    return 201, {"status": 201}, json.dumps(version.get_configuration())


def _mark_updated(fn: Any) -> None:
    from . import invoke

    fn.last_modified = lambda_timestamp()
    fn.lmi_update_done_at = now() + CONFIG["function_update_delay_s"]
    if is_lmi(fn):
        fn.lmi_revision = getattr(fn, "lmi_revision", 1) + 1
    else:
        # New code or configuration: $LATEST's environments are replaced, so the next
        # invoke is a cold start again.
        invoke.retire_pools(fn.account_id, fn.region, fn.function_name, LATEST)


def update_function_configuration(resp: Any) -> Any:
    name = unquote(resp.path.rsplit("/", 2)[-2])
    body = _json(resp)
    fn = resp.backend.get_function(name, None)
    if update_in_progress(fn):
        raise _updating_conflict(fn)
    new_cpc = None
    if "CapacityProviderConfig" in body:
        if not is_lmi(fn):
            # Real AWS text (LMI-FACTS): the compute type is fixed at creation.
            raise errors.invalid_parameter("CapacityProviderConfig isn't supported for Lambda Default functions.")
        new_cpc = body["CapacityProviderConfig"]
    if is_lmi(fn):
        stored = _validate_lmi(
            resp.current_account, resp.region, cpc=new_cpc if new_cpc is not None else fn.lmi_cpc,
            runtime=body.get("Runtime", fn.run_time), package_type=fn.package_type,
            memory=body.get("MemorySize", fn.memory_size), architectures=fn.architectures)
    fn.update_configuration(body)
    if "TracingConfig" in body:  # moto ignores it; lmi switches tracing on by update
        fn.tracing_config = {"Mode": (body["TracingConfig"] or {}).get("Mode", "PassThrough")}
    if is_lmi(fn):
        fn.lmi_cpc = stored
    _mark_updated(fn)
    return 200, {"status": 200}, json.dumps(fn.get_configuration())


def update_function_code(resp: Any) -> Any:
    name = unquote(resp.path.rsplit("/", 2)[-2])
    body = _json(resp)
    fn = resp.backend.get_function(name, None)
    if update_in_progress(fn):
        raise _updating_conflict(fn)
    if body.get("DryRun"):
        return 200, {"status": 200}, json.dumps(fn.get_configuration())
    if body.get("Architectures"):
        if is_lmi(fn):
            _validate_lmi(resp.current_account, resp.region, cpc=fn.lmi_cpc, runtime=fn.run_time,
                          package_type=fn.package_type, memory=fn.memory_size,
                          architectures=body["Architectures"])
        fn.architectures = body["Architectures"]
    fn.update_function_code(body)
    _mark_updated(fn)
    if body.get("Publish"):
        version = publish(resp.backend, name, "", body.get("PublishTo"))
        return 200, {"status": 200}, json.dumps(version.get_configuration())
    return 200, {"status": 200}, json.dumps(fn.get_configuration())


def delete_function(resp: Any) -> Any:
    from . import invoke

    name = unquote(resp.path.rsplit("/", 1)[-1])
    qualifier = _query(resp, "Qualifier")
    if qualifier is None and ":" in name.split(":function:")[-1]:
        qualifier = name.rsplit(":", 1)[-1]
    fn = resp.backend.get_function(name.split(":function:")[-1].split(":")[0], None)
    if qualifier == LATEST:
        raise errors.invalid_parameter("$LATEST version cannot be deleted without deleting the function.")
    lmi = is_lmi(fn)
    with LOCK:
        resp.backend.delete_function(name, qualifier)
        invoke.retire_pools(fn.account_id, fn.region, fn.function_name, qualifier)
    # Versions disappear at once, so the capacity provider is free to delete. AWS answers
    # 202 for an LMI function (asynchronous delete, LocalStack PR 13751) and 204 otherwise.
    status = 202 if lmi else 204
    return status, {"status": status}, ""


def _scaling_target(resp: Any) -> Any:
    name = unquote(resp.path.rstrip("/").split("/")[-2])
    qualifier = _query(resp, "Qualifier")
    if not qualifier or not QUALIFIER_RE.match(qualifier):
        raise errors.constraint(qualifier, "qualifier",
                                r"Member must satisfy regular expression pattern: (\$LATEST\.PUBLISHED|[0-9]+)")
    fn = resp.backend.get_function(name, qualifier)
    if not is_lmi(fn):
        # LMI-FACTS: AccessDeniedException on a non-LMI function (unmodeled error).
        raise errors.access_denied(
            "Function scaling configuration is only supported for functions with a capacity provider configuration.")
    return fn


def default_scaling() -> dict[str, Any]:
    return {"MinExecutionEnvironments": int(CONFIG["lmi_min_environments"])}


def scaling_configs(fn: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(applied, requested). A new request applies after version_active_delay_s: AWS
    converges Applied to Requested asynchronously (LMI-FACTS)."""
    s = getattr(fn, "lmi_scaling", None)
    if not s:
        return default_scaling(), default_scaling()
    applied = s["requested"] if now() >= s["applied_at"] else s["previous"]
    return dict(applied), dict(s["requested"])


def put_function_scaling_config(resp: Any) -> Any:
    fn = _scaling_target(resp)
    given = _json(resp).get("FunctionScalingConfig") or {}
    applied, requested = scaling_configs(fn)
    new = dict(requested)
    for key in ("MinExecutionEnvironments", "MaxExecutionEnvironments"):
        if key in given and given[key] is not None:
            value = given[key]
            if not isinstance(value, int) or not 0 <= value <= 15000:
                raise errors.constraint(value, f"functionScalingConfig.{key[0].lower() + key[1:]}",
                                        "Member must have value between 0 and 15000")
            new[key] = value
    if "MaxExecutionEnvironments" in new and new["MinExecutionEnvironments"] > new["MaxExecutionEnvironments"]:
        raise errors.invalid_parameter(
            "MinExecutionEnvironments must be less than or equal to MaxExecutionEnvironments.")
    with LOCK:
        fn.lmi_scaling = {"requested": new, "previous": applied,
                          "applied_at": now() + CONFIG["version_active_delay_s"]}
    return 202, {"status": 202}, json.dumps({"FunctionState": version_state(fn)})


def get_function_scaling_config(resp: Any) -> Any:
    fn = _scaling_target(resp)
    applied, requested = scaling_configs(fn)
    return 200, {"status": 200}, json.dumps({
        "FunctionArn": fn.function_arn,
        "AppliedFunctionScalingConfig": applied,
        "RequestedFunctionScalingConfig": requested,
    })
