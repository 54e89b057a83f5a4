"""API tokens for ``/api/v1/`` (SECURITY.md 33): made, checked, limited and revoked here only.

A token is ``gc_`` and 256 random bits, shown once; the table keeps its
SHA-256. A request's token is found by that digest and compared again in
constant time. Each use writes the time and address on the row (what the
security page lists) and counts the request in the token's current minute;
over ``GATECHECK_API_REQUESTS_PER_MINUTE`` the request is refused without
work. Concurrent requests may each pass the count they read, so the limit
can be overshot by the number of requests in flight, never more.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.http import HttpRequest
from django.utils import timezone

from readiness.secrets import find_secret

from .audit import record_event
from .channels import security_notice
from .models import ApiToken, User, token_digest

PREFIX = "gc_"
# What each scope lets a token do; ``inventory:write`` reads too, so a
# pipeline that records a rotation can check the result with the same token.
SCOPES: dict[str, str] = {
    "read": "Read your own readiness, inventory, heartbeats and audit events",
    "inventory:write": "Read as above, replace your inventory and record key rotations",
    "desk:read": "Read the desks you lead: their rows and audit events",
}
GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "inventory:write": frozenset({"read", "inventory:write"}),
    "desk:read": frozenset({"desk:read"}),
}
MAX_DAYS = 365
DEFAULT_DAYS = 90
NAME_MAX = ApiToken._meta.get_field("name").max_length


class TokenRefused(ValueError):
    """A token that cannot be made as asked; the message says why, and
    ``field`` which input it concerns (for a form or a command's option)."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


def scopes_for(user: User) -> dict[str, str]:
    """The scopes ``user`` may hold: desk tokens are for leads and superusers."""
    return {code: text for code, text in SCOPES.items() if code != "desk:read" or user.oversees_desks}


def _checked(user: User, name: str, scope: str, days: int) -> str:
    name = name.strip()
    if not name:
        raise TokenRefused("Give the token a name, such as the pipeline that will use it.")
    if len(name) > NAME_MAX:
        raise TokenRefused(f"A name has at most {NAME_MAX} characters.")
    if find_secret(name):
        raise TokenRefused("The name looks like a secret; describe the token's use instead.")
    if scope not in SCOPES:
        raise TokenRefused(f"Unknown scope '{scope}'; choose one of: {', '.join(SCOPES)}.", "scope")
    if scope not in scopes_for(user):
        raise TokenRefused("Only a desk lead or a superuser can hold a desk:read token.", "scope")
    if not 1 <= days <= MAX_DAYS:
        raise TokenRefused(f"A token lives from 1 to {MAX_DAYS} days.", "days")
    if not user.is_active:
        raise TokenRefused("This person is deactivated.", "user")
    return name


def create(
    *, user: User, name: str, scope: str, days: int = DEFAULT_DAYS, request: HttpRequest | None = None, via: str = "security page"
) -> tuple[ApiToken, str]:
    """A new token for ``user``; returns the row and the secret, which is never stored nor shown again."""
    name = _checked(user, name, scope, days)
    secret = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, scope=scope, digest=token_digest(secret), created_at=now, expires_at=now + timedelta(days=days)
        )
        record_event(
            action="api_token.created", request=request, actor=request.user if request else None, subject=user,
            object_label=name, details={"scope": scope, "days": days, "via": via, "token": token.pk},
        )
    security_notice(
        user,
        "A new API token was created",
        f"An API token named '{name}' with the scope {scope} was created for your Gatecheck account ({via}). "
        f"It expires on {token.expires_at:%Y-%m-%d}. You can revoke it on your security page.",
    )
    return token, secret


def revoke(*, token: ApiToken, reason: str, request: HttpRequest | None = None) -> bool:
    """Revoke one token; False when it was revoked already."""
    with transaction.atomic():
        done = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now(), revoked_reason=reason[:100])
        if done:
            record_event(
                action="api_token.revoked", request=request, actor=request.user if request else None, subject=token.user,
                object_label=token.name, details={"reason": reason, "token": token.pk},
            )
    return bool(done)


def revoke_all(*, user: User, reason: str, request: HttpRequest | None = None) -> int:
    """Every live token of ``user`` dies (an MFA reset, a deactivation)."""
    tokens = list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))
    return sum(revoke(token=token, reason=reason, request=request) for token in tokens)


@dataclass(frozen=True)
class Caller:
    """Who an API request acts for, and what it may do."""

    token: ApiToken

    @property
    def user(self) -> User:
        return self.token.user

    def may(self, scope: str) -> bool:
        return scope in GRANTS.get(self.token.scope, frozenset())


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__("too many requests")
        self.retry_after = retry_after


def authenticate(secret: str, *, ip: str | None) -> Caller | None:
    """The caller of a live token, counted against its limit; None for a
    wrong, revoked or expired token or a deactivated person. Raises
    RateLimited over the per-minute limit (nothing else is done)."""
    if not secret.startswith(PREFIX) or len(secret) > 100:
        return None
    digest = token_digest(secret)
    token = ApiToken.objects.live().select_related("user").filter(digest=digest).first()
    if token is None or not hmac.compare_digest(token.digest, digest):
        return None
    now = timezone.now()
    minute = int(time.time() // 60)
    if token.window == minute and token.used_in_window >= settings.GATECHECK_API_REQUESTS_PER_MINUTE:
        raise RateLimited(retry_after=60 - int(time.time() % 60))
    ApiToken.objects.filter(pk=token.pk).update(
        last_used_at=now,
        last_used_ip=ip,
        used_in_window=Case(When(window=minute, then=F("used_in_window") + 1), default=Value(1)),
        window=minute,
    )
    return Caller(token)
