"""SCIM 2.0 provisioning at /scim/v2/ (issue "A firm can adopt it", part 3).

scim2-server does the protocol (discovery, PATCH, filters, paging, errors);
this module is its storage over our tables and the bearer-token check:

- Users are Gatecheck accounts; Groups are desks, their members the desk's
  members. Only the attributes we keep are published.
- ``active: false`` (PUT or PATCH) and DELETE offboard the person through
  ``accounts.offboarding`` (sessions, tokens and lead rights end; the leaver
  checklist opens). After a DELETE the account stays, with its inventory and
  audit trail, but SCIM no longer shows it (RFC 7644 3.6: a deleted
  resource is a 404).
- The filters an identity provider syncs with (``userName``, ``externalId``,
  ``emails.value``, ``id``, ``displayName`` with ``eq``) run in the
  database, paged there: a fixed number of queries per request, whatever
  the number of people. Any other filter is matched by scim2-models over the
  rows, which is fine for a desk-sized table, not for a firm's.
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.db.models.functions import Lower
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    ForbiddenException,
    InvalidValueException,
    Meta,
    NotFoundException,
    ResourceType,
    Schema,
    ScimFilter,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    UnauthorizedException,
    UniquenessException,
)
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.requests import ScimRequest
from scim2_server.storage import ScimStorage, SearchPage
from scim2_server.utils import load_json_resource, parametrize

from . import offboarding, scim_tokens, signin
from .audit import record_event
from .decorators import public
from .models import AuditEvent, Desk, User
from .net import client_ip

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_RESULTS = 200
# The attributes we keep, with the sub-attributes of complex ones.
KEEP = {
    USER_URN: {"userName": None, "name": {"givenName", "familyName"}, "displayName": None, "emails": {"value"}, "active": None,
               "groups": {"value", "$ref", "display"}},
    GROUP_URN: {"displayName": None, "members": {"value", "$ref"}},
}
# displayName is made from the names. ``active`` is required: an account is
# active or not, it cannot be left unassigned (a PATCH cannot remove it).
OVERRIDE = {(USER_URN, "displayName"): {"mutability": "readOnly"}, (USER_URN, "active"): {"required": True}}
GROUPS_CREATED = datetime(2026, 1, 1, tzinfo=UTC)  # desks keep no creation time


def _schemas():
    for schema in load_json_resource("default-schemas.json"):
        if keep := KEEP.get(schema["id"]):
            attributes = [a | OVERRIDE.get((schema["id"], a["name"]), {}) for a in schema["attributes"] if a["name"] in keep]
            for attribute in attributes:
                if keep[attribute["name"]]:
                    attribute["subAttributes"] = [x for x in attribute["subAttributes"] if x["name"] in keep[attribute["name"]]]
            yield Schema.model_validate({**schema, "attributes": attributes})


PROVIDER = ScimProvider.from_discovery(
    list(_schemas()),
    [ResourceType.model_validate({k: v for k, v in rt.items() if k != "schemaExtensions"}) for rt in load_json_resource("default-resource-types.json")],
    ServiceProviderConfig.model_validate(
        {
            "patch": {"supported": True},
            "bulk": {"supported": False},
            "filter": {"supported": True, "maxResults": MAX_RESULTS},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {"type": "oauthbearertoken", "name": "Bearer token", "description": "Authorization: Bearer <token from manage.py scim_token create>"}
            ],
        }
    ),
    ScimPolicy(
        unknown=ScimPolicy.Unknown.ignore,  # identity providers send attributes we do not keep
        remove_value_as_filter=ScimPolicy.RemoveValue.apply,  # Entra removes members by "value"
        unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,  # Entra: emails[type eq "work"]
    ),
)

# ``attribute eq "value"``: what identity providers look people and groups up by.
_EQ = re.compile(r'^\s*(?P<attr>[A-Za-z.]+)\s+eq\s+"(?P<value>(?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_USER_LOOKUPS = {"username": "address", "externalid": "scim_external_id", "emails.value": "email_lower", "emails": "email_lower", "id": "pk"}
_GROUP_LOOKUPS = {"displayname": "name_lower", "externalid": "scim_external_id", "id": "pk"}


def _users() -> QuerySet[User]:
    return (
        User.objects.filter(scim_removed_at__isnull=True)
        .annotate(address=Lower("username"), email_lower=Lower("email"))
        .prefetch_related(Prefetch("desks", queryset=Desk.objects.only("pk", "name")))
        .order_by("pk")
    )


def _desks() -> QuerySet[Desk]:
    return Desk.objects.annotate(name_lower=Lower("name")).prefetch_related(
        Prefetch("members", queryset=User.objects.filter(scim_removed_at__isnull=True).only("pk"))
    ).order_by("pk")


class Storage(ScimStorage):
    """scim2-server's storage over accounts.User and accounts.Desk."""

    def _dump(self, obj: User | Desk):
        if isinstance(obj, User):
            data = {
                "id": str(obj.pk),
                "externalId": obj.scim_external_id or None,
                "userName": obj.username,
                "name": {"givenName": obj.first_name or None, "familyName": obj.last_name or None},
                "displayName": obj.get_full_name() or obj.username,
                "active": obj.is_active,
                "emails": [{"value": obj.email}] if obj.email else None,
                "groups": [{"value": str(d.pk), "$ref": f"Groups/{d.pk}", "display": d.name} for d in obj.desks.all()] or None,
            }
            kind, created = "User", obj.date_joined
        else:
            data = {
                "id": str(obj.pk),
                "externalId": obj.scim_external_id or None,
                "displayName": obj.name,
                "members": [{"value": str(u.pk), "$ref": f"Users/{u.pk}"} for u in obj.members.all()] or None,
            }
            kind, created = "Group", GROUPS_CREATED
        resource = PROVIDER.model_for(kind).model_validate({k: v for k, v in data.items() if v is not None})
        resource.meta = Meta(resource_type=kind, created=created, last_modified=created)
        return resource

    def _get(self, kind: str, resource_id: Any) -> User | Desk:
        rows = _users() if kind == "User" else _desks()
        obj = rows.filter(pk=resource_id).first() if str(resource_id).isdigit() else None
        if obj is None:
            raise NotFoundException(detail=f"{kind} {resource_id} not found")
        return obj

    def get(self, resource_type, resource_id, *, response_parameters=None):
        return self._dump(self._get(resource_type.name, resource_id))

    def search(self, resource_types, search_request, *, position=None):
        start = search_request.start_index_0 or 0
        count = MAX_RESULTS if search_request.count is None else min(search_request.count, MAX_RESULTS)
        if len(resource_types) != 1:
            # A search across both kinds (POST /.search at the root): small by nature of the use.
            found = [r for rt in resource_types for r in self._matching(rt, search_request.filter)]
            return SearchPage(len(found), found[start : start + count])
        resource_type = resource_types[0]
        rows = _users() if resource_type.name == "User" else _desks()
        text = str(search_request.filter) if search_request.filter is not None else ""
        lookups = _USER_LOOKUPS if resource_type.name == "User" else _GROUP_LOOKUPS
        match = _EQ.match(text)
        if not text or (match and match["attr"].lower() in lookups):
            if match:
                field, value = lookups[match["attr"].lower()], match["value"].replace('\\"', '"')
                if field == "pk" and not value.isdigit():
                    return SearchPage(0, [])
                rows = rows.filter(**{field: value if field in ("pk", "scim_external_id") else value.lower()})
            return SearchPage(rows.count(), [self._dump(o) for o in rows[start : start + count]])
        found = self._matching(resource_type, search_request.filter)
        return SearchPage(len(found), found[start : start + count])

    def _matching(self, resource_type, flt) -> list:
        rows = _users() if resource_type.name == "User" else _desks()
        resources = [self._dump(o) for o in rows]
        if flt is None:
            return resources
        flt = parametrize(ScimFilter, PROVIDER.model_for(resource_type.name))(str(flt))
        return [r for r in resources if flt.match(r)]

    def create(self, resource_type, resource):
        if resource_type.name == "User":
            user = User(scim_provisioned_at=timezone.now())
            user.set_unusable_password()  # they sign in through the firm's sign-on, or reset a password
            return self._save_user(user, resource)
        return self._save_desk(Desk(), resource)

    def update(self, resource_type, resource, *, expected_version=None):
        obj = self._get(resource_type.name, resource.id)
        return self._save_user(_managed(obj), resource) if resource_type.name == "User" else self._save_desk(obj, resource)

    def delete(self, resource_type, resource_id, *, expected_version=None):
        obj = self._get(resource_type.name, resource_id)
        if resource_type.name == "Group":
            if obj.leads.exists() or obj.leaver_checks.exists():
                raise ForbiddenException(detail="This desk has leads or leaver checklists: remove it in Gatecheck's admin, not by provisioning.")
            _audit("scim.group_deleted", object_label=obj.name)
            obj.delete()
            return
        offboarding.deactivate(user=_managed(obj), by=None, request=_request.get(None), via="scim")
        User.objects.filter(pk=obj.pk).update(scim_removed_at=timezone.now())

    def operation(self):
        return transaction.atomic()

    def _save_user(self, user: User, resource):
        created = user.pk is None
        username = User.normalize_username(resource.user_name or "")
        email = User.objects.normalize_email(resource.emails[0].value if resource.emails else "")
        _valid(username, email)
        if User.objects.exclude(pk=user.pk).filter(username=username).exists():
            raise UniquenessException(detail="userName is taken")
        leaving = bool(not created and user.is_active and resource.active is False)
        returning = bool(not created and not user.is_active and resource.active is True)
        if returning and _deactivated_via(user) not in (None, "scim"):
            raise ForbiddenException(detail="This account was deactivated in Gatecheck; only Gatecheck can reactivate it.")
        user.username, user.scim_external_id = username, resource.external_id or ""
        user.first_name = ((resource.name and resource.name.given_name) or "")[:150]
        user.last_name = ((resource.name and resource.name.family_name) or "")[:150]
        if created:
            user.email = email  # confirmed at the first sign-on (accounts.sso) or by its link
        if not leaving and resource.active is not None:
            user.is_active = resource.active
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError as error:
            raise UniquenessException(detail="userName is taken") from error
        _audit("account.created" if created else "user.reactivated" if returning else "scim.user_updated", subject=user, object_label=user.username)
        if not created and email != user.email:
            # A new address is a security change like any other: unconfirmed
            # until its link is followed, the old address told.
            signin.email_change(request=_request.get(None), user=user, email=email)
        if leaving:
            offboarding.deactivate(user=user, by=None, request=_request.get(None), via="scim")
        return self._dump(self._get("User", user.pk))

    def _save_desk(self, desk: Desk, resource):
        desk.name = (resource.display_name or "").strip()
        if not desk.name or len(desk.name) > Desk._meta.get_field("name").max_length:
            raise InvalidValueException(detail="displayName must have 1 to 100 characters.")
        desk.scim_external_id = resource.external_id or ""
        ids = {str(m.value) for m in resource.members or []}
        users = list(User.objects.filter(pk__in=[i for i in ids if i.isdigit()], scim_removed_at__isnull=True))
        if len(users) != len(ids):
            raise InvalidValueException(detail="A member is not a known user.")
        if Desk.objects.exclude(pk=desk.pk).filter(Q(name__iexact=desk.name)).exists():
            raise UniquenessException(detail="displayName is taken")
        with transaction.atomic():
            before = set(desk.members.values_list("pk", flat=True)) if desk.pk else set()
            desk.save()
            desk.members.set(users)  # joining scores the newcomers; the desk's tallies follow
            after = {u.pk for u in users}
            _audit("scim.group_updated", object_label=desk.name, details={"added": sorted(after - before)[:100], "removed": sorted(before - after)[:100]})
        return self._dump(self._get("Group", desk.pk))


def _managed(user: User) -> User:
    """Provisioning manages traders and desk leads; an administrator is
    managed in Gatecheck only (a provisioning client must not rename,
    re-address or deactivate a superuser)."""
    if user.is_superuser or (user.is_staff and not user.led_desks.exists()):
        raise ForbiddenException(detail="Gatecheck's administrators are managed in Gatecheck, not by provisioning.")
    return user


def _valid(username: str, email: str) -> None:
    field = User._meta.get_field("username")
    try:
        if not username or len(username) > field.max_length:
            raise ValidationError("too long or empty")
        for validator in field.validators:
            validator(username)
        if email:
            validate_email(email)
    except ValidationError as error:
        raise InvalidValueException(detail="userName must be 1 to 150 letters, digits and @.+-_; emails must hold e-mail addresses.") from error


def _deactivated_via(user: User) -> str | None:
    """How the person was last deactivated, from the audit trail (None:
    never offboarded, e.g. provisioned inactive)."""
    event = AuditEvent.objects.filter(subject=user, action="user.deactivated").order_by("-pk").first()
    return event.details.get("via") if event else None


# The request being served, for the audit trail (address, user agent, token).
_request: ContextVar[HttpRequest] = ContextVar("scim_request")


def _audit(action: str, **fields) -> None:
    request = _request.get(None)
    token = getattr(request, "scim_token", None)
    details = {"via": "scim", "scim_token": token.name if token else None, **fields.pop("details", {})}
    record_event(action=action, request=request, details=details, **fields)


class Application(WSGIApplication):
    def check_auth(self, request):
        django_request = _request.get(None)
        token = scim_tokens.authenticate(request.header("Authorization") or "", client_ip(django_request) if django_request else None)
        if token is None:
            raise UnauthorizedException
        django_request.scim_token = token


APPLICATION = Application(Storage(), PROVIDER)


def _with_defaults(method: str, path: str, body: bytes) -> bytes:
    """A new user whose request does not say ``active`` is active (the
    schema makes ``active`` required, so that it is never unassigned)."""
    if method != "POST" or path.rstrip("/") != "/Users":
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body  # scim2-server answers the malformed body
    if isinstance(data, dict) and "active" not in data:
        data["active"] = True
        return json.dumps(data).encode()
    return body


@public
@csrf_exempt
def scim_view(request: HttpRequest, path: str | None = None) -> HttpResponse:
    """Every /scim/v2/ request. Public to the MFA gate: the bearer token is
    its credential, checked by ``Application.check_auth`` on each request."""
    scim_request = ScimRequest(
        method=request.method,
        base_url=request.build_absolute_uri("/scim/v2"),
        path=path or "/",
        query=request.GET.dict(),
        headers=dict(request.headers),
        body=_with_defaults(request.method, path or "/", request.body),
    )
    reset = _request.set(request)
    try:
        response = APPLICATION.serve(scim_request)
    finally:
        _request.reset(reset)
    out = HttpResponse(b"" if response.body is None else json.dumps(response.body), status=response.status.value)
    for key, value in response.headers.items():
        out[key] = value
    out["Cache-Control"] = "no-store"
    return out

