"""SCIM bearer tokens (SECURITY.md 33): ``scim_`` and 256 random bits, shown
once by ``manage.py scim_token create``; the table keeps the SHA-256. A
request's token is found by that digest and compared again in constant time;
each use records the time and address; creation and revocation are audited."""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from readiness.secrets import find_secret

from .audit import record_event
from .models import ScimToken, token_digest

PREFIX = "scim_"
MAX_DAYS = 365
NAME_MAX = ScimToken._meta.get_field("name").max_length


class Refused(ValueError):
    """A token that cannot be made as asked."""


def create(*, name: str, days: int = MAX_DAYS) -> tuple[ScimToken, str]:
    name = name.strip()
    if not name or len(name) > NAME_MAX or find_secret(name):
        raise Refused(f"Give the token a plain name of 1 to {NAME_MAX} characters, such as the identity provider that uses it.")
    if not 1 <= days <= MAX_DAYS:
        raise Refused(f"A SCIM token lives from 1 to {MAX_DAYS} days.")
    secret = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    try:
        with transaction.atomic():
            token = ScimToken.objects.create(name=name, digest=token_digest(secret), created_at=now, expires_at=now + timedelta(days=days))
            record_event(action="scim_token.created", object_label=name, details={"days": days, "via": "manage.py"})
    except IntegrityError:
        raise Refused(f"A SCIM token named '{name}' exists already; choose another name.") from None
    return token, secret


def revoke(name: str) -> bool:
    token = ScimToken.objects.filter(name=name, revoked_at__isnull=True).first()
    if token is None:
        return False
    ScimToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    record_event(action="scim_token.revoked", object_label=name, details={"via": "manage.py"})
    return True


def authenticate(header: str, ip: str | None) -> ScimToken | None:
    """The live token an ``Authorization: Bearer …`` header carries, or None."""
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.startswith(PREFIX):
        return None
    digest = token_digest(secret.strip())
    token = ScimToken.objects.filter(digest=digest, revoked_at__isnull=True, expires_at__gt=timezone.now()).first()
    if token is None or not hmac.compare_digest(token.digest, digest):
        return None
    ScimToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now(), last_used_ip=ip)
    return token
