"""Fixtures: one local AWS per test session, on a free port, reset before every test."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
LAMBDA_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
})


class LocalAws:
    """A running server plus small helpers for its control endpoint."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url = url
        self.process = process
        self.log = log
        self._clients: dict[Any, Any] = {}

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.request("POST", "/_localaws/config", changes)

    def calls(self) -> list[str]:
        return self.request("GET", "/_localaws/calls")["calls"]

    def reset(self) -> None:
        self.request("POST", "/moto-api/reset", {})

    def client(self, service: str, retries: int = 1, **config: Any) -> Any:
        """A boto3 client (cached: building one costs ~50 ms). ``retries`` counts all attempts:
        1 means no retry,
        so that error tests see the first answer."""
        key = (service, retries, tuple(sorted(config.items())))
        if key not in self._clients:
            self._clients[key] = boto3.client(
                service, endpoint_url=self.url, region_name=REGION,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": retries, "mode": "standard"}, **config),
            )
        return self._clients[key]


def spawn_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``python -m localaws --port 0`` the way a harness does and read its port."""
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    proc = subprocess.Popen(
        [sys.executable, "-m", "localaws", "--port", "0", "--log-file", str(log), "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(120)
    if not line or not line[0].startswith(b"listening on "):
        proc.kill()
        raise RuntimeError(f"localaws did not start: {line!r}\n{log.read_text() if log.exists() else ''}")
    return proc, line[0].decode().strip()


@pytest.fixture(scope="session")
def localaws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAws]:
    log = tmp_path_factory.mktemp("localaws") / "server.log"
    proc, line = spawn_server(log)
    server = LocalAws("http://" + line.split("listening on ", 1)[1], proc, log)
    server.ready_line = line  # type: ignore[attr-defined]
    yield server
    # --exit-on-stdin-eof: closing stdin (what a dying harness does) must stop it.
    proc.stdin.close()  # type: ignore[union-attr]
    try:
        assert proc.wait(15) == 0, "localaws did not exit when its stdin closed"
    finally:
        if proc.poll() is None:
            proc.kill()


# Shorter than the server's defaults to keep the suite fast; a test that is about a delay
# sets it explicitly.
FAST = {"capacity_provider_active_delay_s": 0.05, "capacity_provider_delete_delay_s": 0.05,
        "version_active_delay_s": 0.05, "default_init_ms": 50}


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "localaws" in request.fixturenames:
        server = request.getfixturevalue("localaws")
        server.reset()
        server.configure(**FAST)


@pytest.fixture
def aws(localaws: LocalAws) -> LocalAws:
    return localaws


@pytest.fixture
def lam(aws: LocalAws) -> Any:
    return aws.client("lambda")


@pytest.fixture
def xray(aws: LocalAws) -> Any:
    return aws.client("xray")


def code_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buf.getvalue()


class Stack:
    """A VPC with two subnets, a security group, an operator role and an execution role."""

    def __init__(self, aws: LocalAws) -> None:
        ec2, iam = aws.client("ec2"), aws.client("iam")
        self.vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnets = [ec2.create_subnet(VpcId=self.vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"]
                        for i in (1, 2)]
        self.sg = ec2.create_security_group(VpcId=self.vpc, GroupName="lmi", Description="lmi")["GroupId"]
        self.operator_role = iam.create_role(RoleName="lmi-operator", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        iam.attach_role_policy(RoleName="lmi-operator",
                               PolicyArn="arn:aws:iam::aws:policy/AWSLambdaManagedEC2ResourceOperator")
        self.exec_role = iam.create_role(RoleName="lmi-exec", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        for policy in ("service-role/AWSLambdaBasicExecutionRole", "AWSXRayDaemonWriteAccess"):
            iam.attach_role_policy(RoleName="lmi-exec", PolicyArn=f"arn:aws:iam::aws:policy/{policy}")
        self.lam = aws.client("lambda")

    def provider(self, name: str = "cp", wait: bool = True, **overrides: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "CapacityProviderName": name,
            "VpcConfig": {"SubnetIds": self.subnets, "SecurityGroupIds": [self.sg]},
            "PermissionsConfig": {"CapacityProviderOperatorRoleArn": self.operator_role},
        }
        params.update(overrides)
        cp = self.lam.create_capacity_provider(**params)["CapacityProvider"]
        if wait:
            wait_for(lambda: self.lam.get_capacity_provider(CapacityProviderName=name)["CapacityProvider"]["State"] == "Active")
        return cp

    def function(self, name: str = "fn", provider_arn: str | None = None, tracing: bool = True,
                 lmi: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "FunctionName": name, "Runtime": "python3.13", "Role": self.exec_role,
            "Handler": "index.handler", "Code": {"ZipFile": code_zip()},
            "TracingConfig": {"Mode": "Active" if tracing else "PassThrough"},
        }
        if provider_arn:
            params["MemorySize"] = 2048
            params["CapacityProviderConfig"] = {"LambdaManagedInstancesCapacityProviderConfig": {
                "CapacityProviderArn": provider_arn, **(lmi or {})}}
        params.update(overrides)
        return self.lam.create_function(**params)

    def lmi_version(self, name: str = "fn", latest_published: bool = True, **fn_kwargs: Any) -> dict[str, Any]:
        """An LMI function with a published, Active version."""
        cp = self.provider(name=f"{name}-cp")
        self.function(name, provider_arn=cp["CapacityProviderArn"], **fn_kwargs)
        kwargs = {"PublishTo": "LATEST_PUBLISHED"} if latest_published else {}
        version = self.lam.publish_version(FunctionName=name, **kwargs)
        wait_for(lambda: self.lam.get_function_configuration(
            FunctionName=name, Qualifier=version["Version"])["State"] == "Active")
        return version


@pytest.fixture
def stack(aws: LocalAws) -> Stack:
    return Stack(aws)


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def new_trace_id() -> str:
    return f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"


def invoke_traced(lam: Any, trace_id: str, **kwargs: Any) -> Any:
    """Invoke with our own X-Amzn-Trace-Id header (what lmi does with .customize())."""
    def add_header(request: Any, **_: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1"

    lam.meta.events.register_first("before-send.lambda.Invoke", add_header)
    try:
        return lam.invoke(**kwargs)
    finally:
        lam.meta.events.unregister("before-send.lambda.Invoke", add_header)


def segments(xray: Any, trace_id: str) -> list[dict[str, Any]]:
    traces = xray.batch_get_traces(TraceIds=[trace_id])["Traces"]
    return [json.loads(s["Document"]) for t in traces for s in t["Segments"]]
