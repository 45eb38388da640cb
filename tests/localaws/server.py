"""Build the extended moto server: patch moto's Lambda and X-Ray at start-up (moto has
no plugin API, but it routes REST-JSON operations by botocore's model, which already
knows the LMI operations, so adding URL rules and response methods is enough), then wrap
the WSGI app in our middleware.
"""
from __future__ import annotations

import json
import logging
import traceback
from typing import Any, Callable
from urllib.parse import unquote

from . import bootstrap

bootstrap.configure()

from moto.awslambda import urls as lambda_urls  # noqa: E402
from moto.awslambda.models import LambdaBackend, LambdaFunction  # noqa: E402
from moto.awslambda.responses import LambdaResponse  # noqa: E402
from moto.core.exceptions import ServiceException  # noqa: E402
from moto.core.resource_tagging import TaggedResource  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from moto.xray.responses import XRayResponse  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402
from werkzeug.serving import BaseWSGIServer, make_server  # noqa: E402

from . import capacity_providers, functions, invoke, xray  # noqa: E402
from .errors import LambdaApiError  # noqa: E402
from .middleware import LocalAwsMiddleware  # noqa: E402

_installed = False

# URL rules moto lacks: the capacity-provider API (2025-11-30) and function paths whose
# name or qualifier contains '.' or '$' (e.g. fn:$LATEST.PUBLISHED), which moto's
# [\w_:%-]+ does not match. All of them go to LambdaResponse.dispatch, which picks the
# operation from botocore's model.
_EXTRA_LAMBDA_PATHS = [
    r"{0}/(?P<api_version>[^/]+)/capacity-providers/?$",
    r"{0}/(?P<api_version>[^/]+)/capacity-providers/(?P<capacity_provider_name>[^/]+)/?$",
    r"{0}/(?P<api_version>[^/]+)/capacity-providers/(?P<capacity_provider_name>[^/]+)/function-versions/?$",
    r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[^/]+)/function-scaling-config/?$",
    r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[^/]+)/?$",
    r"{0}/(?P<api_version>[^/]+)/functions/(?P<function_name>[^/]+)/(?P<sub>[a-z-]+)/?$",
]


def _method(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A response method; a bug in our code answers a JSON 500 (and logs the traceback)
    instead of Flask's HTML page, which SDKs cannot parse."""
    def method(self: Any) -> Any:
        try:
            return handler(self)
        except (HTTPException, ServiceException):
            raise
        except Exception as err:  # noqa: BLE001
            traceback.print_exc()
            raise LambdaApiError("ServiceException", f"localaws internal error: {err!r}", 500,
                                 message_key="Message", user=False) from err
    method.__name__ = handler.__name__
    return method


def _cp_handlers() -> dict[str, Callable[[Any], Any]]:
    def name_of(resp: Any) -> str:
        parts = resp.path.rstrip("/").split("/")
        return unquote(parts[parts.index("capacity-providers") + 1])

    def create_capacity_provider(resp: Any) -> Any:
        out = capacity_providers.create(resp.current_account, resp.region, capacity_providers.json_body(resp.body))
        return 202, {"status": 202}, _dumps(out)

    def get_capacity_provider(resp: Any) -> Any:
        return 200, {"status": 200}, _dumps(capacity_providers.get(resp.current_account, resp.region, name_of(resp)))

    def update_capacity_provider(resp: Any) -> Any:
        out = capacity_providers.update(resp.current_account, resp.region, name_of(resp),
                                        capacity_providers.json_body(resp.body))
        return 202, {"status": 202}, _dumps(out)

    def delete_capacity_provider(resp: Any) -> Any:
        return 202, {"status": 202}, _dumps(capacity_providers.delete(resp.current_account, resp.region, name_of(resp)))

    def list_capacity_providers(resp: Any) -> Any:
        return 200, {"status": 200}, _dumps(
            capacity_providers.list_providers(resp.current_account, resp.region, resp.querystring))

    def list_function_versions_by_capacity_provider(resp: Any) -> Any:
        return 200, {"status": 200}, _dumps(capacity_providers.list_function_versions(
            resp.current_account, resp.region, name_of(resp), resp.querystring))

    return {f.__name__: f for f in (create_capacity_provider, get_capacity_provider, update_capacity_provider,
                                    delete_capacity_provider, list_capacity_providers,
                                    list_function_versions_by_capacity_provider)}


def _dumps(doc: Any) -> str:
    return json.dumps(doc)


def _tag_handlers() -> dict[str, Callable[[Any], Any]]:
    """TagResource/UntagResource/ListTags: capacity-provider ARNs are ours, the rest moto's."""
    orig_tag, orig_untag, orig_list = LambdaResponse.tag_resource, LambdaResponse.untag_resource, LambdaResponse.list_tags

    def arn_of(resp: Any) -> str:
        return unquote(resp.path.rsplit("/tags/", 1)[-1])

    def tag_resource(resp: Any) -> Any:
        arn = arn_of(resp)
        if not capacity_providers.is_capacity_provider_arn(arn):
            return orig_tag(resp)
        capacity_providers.tag(resp.current_account, resp.region, arn,
                               capacity_providers.json_body(resp.body).get("Tags") or {})
        return 204, {"status": 204}, ""

    def untag_resource(resp: Any) -> Any:
        arn = arn_of(resp)
        if not capacity_providers.is_capacity_provider_arn(arn):
            return orig_untag(resp)
        capacity_providers.untag(resp.current_account, resp.region, arn, resp.querystring.get("tagKeys") or [])
        return 204, {"status": 204}, ""

    def list_tags(resp: Any) -> Any:
        arn = arn_of(resp)
        if not capacity_providers.is_capacity_provider_arn(arn):
            return orig_list(resp)
        return 200, {"status": 200}, _dumps({"Tags": capacity_providers.list_tags(resp.current_account, resp.region, arn)})

    return {"tag_resource": tag_resource, "untag_resource": untag_resource, "list_tags": list_tags}


def install() -> None:
    """Patch moto in-process. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    for path in _EXTRA_LAMBDA_PATHS:
        lambda_urls.url_paths.setdefault(path, LambdaResponse.dispatch)

    handlers: dict[str, Callable[[Any], Any]] = {}
    handlers.update(_cp_handlers())
    handlers.update(_tag_handlers())
    handlers.update({
        "create_function": functions.create_function,
        "publish_version": functions.publish_version,
        "update_function_configuration": functions.update_function_configuration,
        "update_function_code": functions.update_function_code,
        "delete_function": functions.delete_function,
        "put_function_scaling_config": functions.put_function_scaling_config,
        "get_function_scaling_config": functions.get_function_scaling_config,
        "invoke": invoke.invoke,
    })
    for name, handler in handlers.items():
        setattr(LambdaResponse, name, _method(handler))

    LambdaFunction.get_configuration = functions.get_configuration  # type: ignore[method-assign]

    orig_iter = LambdaBackend.iter_tagged_resources

    def iter_tagged_resources(self: Any) -> Any:
        yield from orig_iter(self)
        # Only from the backend moto really uses (the no-Docker one), to avoid duplicates.
        if type(self).__name__ == "LambdaSimpleBackend":
            for arn, tags in capacity_providers.tagged_resources(self.account_id, self.region_name):
                yield TaggedResource(arn=arn, tags=tags, resource_type="lambda:capacity-provider")

    LambdaBackend.iter_tagged_resources = iter_tagged_resources  # type: ignore[method-assign]

    # X-Ray: action names come from the URL path (/Traces, /TraceSummaries).
    XRayResponse.traces = _method(xray.batch_get_traces)  # type: ignore[attr-defined]
    XRayResponse.trace_summaries = _method(xray.get_trace_summaries)  # type: ignore[attr-defined]


class _QuietHandler(MotoRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


def make(host: str, port: int, *, log_requests: bool = False) -> BaseWSGIServer:
    install()
    if not log_requests:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    dispatcher = DomainDispatcherApplication(create_backend_app)
    _warm_up(dispatcher)
    app = LocalAwsMiddleware(dispatcher)
    handler = MotoRequestHandler if log_requests else _QuietHandler
    return make_server(host, port, app, threaded=True, request_handler=handler)


def _warm_up(dispatcher: DomainDispatcherApplication) -> None:
    """Build the services lmi uses now rather than on their first request (~3 s), so the
    first calls of a test are not slower than the rest."""
    for service in ("lambda", "ec2", "iam", "xray", "sts", "logs"):
        auth = (f"AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0")
        dispatcher.get_application({"PATH_INFO": "/", "REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": auth})
