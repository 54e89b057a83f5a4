"""``/api/v1/``: one django-ninja API put together from each app's routes.

Every operation needs an API token (``accounts.api.BearerToken``); the
schema (``openapi.json``) and its reference page (``docs``, Swagger UI from
django-ninja's own static files, no CDN) are public. The MFA gate does not
apply to token requests: a token is made behind step-up, names one person
and dies with them (SECURITY.md 33). CORS stays closed: no answer carries
Access-Control-Allow-Origin, so browsers on other sites cannot read it.
"""

from __future__ import annotations

from django.urls import path, re_path
from ninja import NinjaAPI, Swagger

from accounts import api as accounts_api
from checklist.api import router as readiness_router
from desk.api import router as desk_router
from devices.api import router as devices_router


class GatecheckAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Error answers are problem details: say so in the schema."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for operations in schema["paths"].values():
            for operation in operations.values():
                for status, response in operation["responses"].items():
                    if int(status) >= 400 and "application/json" in response.get("content", {}):
                        response["content"] = {accounts_api.PROBLEM: response["content"]["application/json"]}
        return schema


api = GatecheckAPI(
    title="Gatecheck API",
    version="1",
    description="Readiness, inventory, heartbeats, desk rows and audit events for API tokens (see the security page). "
    "Errors are RFC 9457 problem details.",
    urls_namespace="api-1",
    auth=accounts_api.BearerToken(),
    docs=Swagger(settings={"persistAuthorization": False}),
)
accounts_api.install_problem_handlers(api)
api.add_router("", readiness_router)
api.add_router("", devices_router)
api.add_router("", desk_router)
api.add_router("", accounts_api.router)


def _public(patterns):
    """The token is checked by the API itself, not by the session's MFA gate."""
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            _public(pattern.url_patterns)
        else:
            pattern.callback.gatecheck_public = True
    return patterns


urls = api.urls
_public(urls[0])
urlpatterns = [
    path("", urls),
    re_path(r"^(?P<rest>.*)$", accounts_api.unknown_route),
]
