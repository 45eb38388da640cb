"""Settings that must be in place before moto is imported or first used."""
from __future__ import annotations

import json
import os
from typing import Any


def configure() -> None:
    # AWS managed policies (AWSLambdaManagedEC2ResourceOperator,
    # service-role/AWSLambdaBasicExecutionRole, AWSXRayDaemonWriteAccess) must be attachable.
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    # lmi never looks up AMIs (Lambda picks the instances' images); loading moto's AMI list
    # costs ~0.4 s per EC2 region on every reset. Set it to true to have them back.
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # Credentials are never checked, but moto and boto need some.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    from moto.core.config import default_user_config

    # No Docker here: Lambda invokes never run code (LMI-FACTS "The local AWS").
    default_user_config["lambda"]["use_docker"] = False
    default_user_config["iam"]["load_aws_managed_policies"] = True
    _speed_up_managed_policies()


def _speed_up_managed_policies() -> None:
    """moto parses its 1,500 AWS managed policies (a 3 MB JSON string) for each of the six
    IAM partitions, on start and again on every reset (~2 s per reset). Parse once, and
    load them only in the 'aws' partition, the one this project uses."""
    from moto.iam import models as iam_models

    parsed: dict[str, Any] = {}

    def _init_aws_policies(self: Any) -> list[Any]:
        if not iam_models.load_iam_aws_managed_policies() or self.region_name != "aws":
            return []
        if not parsed:
            parsed.update(json.loads(iam_models.aws_managed_policies_data))
        return [iam_models.AWSManagedPolicy.from_data(name, self.account_id, self.region_name, d)
                for name, d in parsed.items()]

    iam_models.IAMBackend._init_aws_policies = _init_aws_policies  # type: ignore[method-assign]
