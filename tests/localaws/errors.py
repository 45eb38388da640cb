"""Lambda's REST-JSON errors, shaped as AWS sends them.

AWS puts the error code in the ``x-amzn-errortype`` header and a body like
``{"Type": "User", "message": "..."}``. Each error shape in botocore's Lambda model
spells its message member either ``message`` or ``Message``; the Rust SDK reads the
member its model names, so each helper below uses the model's spelling.
(Recorded examples: shared/aws-recorded/lambda-api_tag-exceptions_*.json.)

moto catches ``HTTPException`` subclasses raised by a response method and answers with
their status, headers and body, so raising one of these anywhere in a handler works.
"""
from __future__ import annotations

import json
from typing import Any

from moto.core.exceptions import JsonRESTError


class LambdaApiError(JsonRESTError):
    def __init__(
        self,
        error_type: str,
        message: str,
        status: int,
        *,
        message_key: str = "message",
        user: bool = True,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error_type, message)
        self.code = status
        body: dict[str, Any] = {}
        if user is not None:
            body["Type"] = "User" if user else "Service"
        body[message_key] = message
        body.update(extra or {})
        self.description = json.dumps(body)
        self._extra_headers = headers or {}

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [
            ("x-amzn-errortype", self.error_type),
            ("Content-Type", "application/json"),
            *self._extra_headers.items(),
        ]


def invalid_parameter(message: str) -> LambdaApiError:
    return LambdaApiError("InvalidParameterValueException", message, 400)


def validation(message: str) -> LambdaApiError:
    # Smithy constraint violations: no "Type" member (see the recorded ValidationException).
    return LambdaApiError("ValidationException", message, 400, user=None)


def constraint(value: Any, member: str, rule: str) -> LambdaApiError:
    """AWS's wording for a violated model constraint."""
    return validation(
        f"1 validation error detected: Value {_render(value)} at '{member}' "
        f"failed to satisfy constraint: {rule}"
    )


def _render(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "'[" + ", ".join(str(v) for v in value) + "]'"
    return f"'{value}'"


def not_found(message: str) -> LambdaApiError:
    return LambdaApiError("ResourceNotFoundException", message, 404, message_key="Message")


def conflict(message: str) -> LambdaApiError:
    return LambdaApiError("ResourceConflictException", message, 409)


def too_many_requests(message: str, reason: str) -> LambdaApiError:
    # retryAfterSeconds is bound to the Retry-After header in the model.
    return LambdaApiError(
        "TooManyRequestsException", message, 429, extra={"Reason": reason},
        headers={"Retry-After": "1"},
    )


def no_published_version(message: str) -> LambdaApiError:
    return LambdaApiError("NoPublishedVersionException", message, 400, message_key="Message")


def access_denied(message: str) -> LambdaApiError:
    # Unmodeled in Lambda's model; LMI-FACTS "Put/GetFunctionScalingConfig".
    return LambdaApiError("AccessDeniedException", message, 403, message_key="Message")


def limit_exceeded(error_type: str, message: str) -> LambdaApiError:
    return LambdaApiError(error_type, message, 400)
