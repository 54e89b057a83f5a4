"""A secret shown once, on the page after a POST/redirect/GET (backup codes,
the calendar address, a ping address, an enrolment code).

It travels to that page in an encrypted, five-minute, HttpOnly cookie scoped
to the page's path and bound to the user: Fernet (AES-128-CBC and
HMAC-SHA256) under a key derived from SECRET_KEY for this use alone, so
whoever sees the cookie (a proxy log, a browser extension, a shoulder) reads
nothing in it. The cookie also names a random one-time ticket whose SHA-256
is a row in the database; showing the secret deletes that row, so the same
cookie, or a copy of it, shows nothing a second time. The secret itself is
never written to the session table nor any other, so a reader of the
database (a backup, a replica) finds none.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.crypto import salted_hmac

from .models import ShownOnceTicket, token_digest

MAX_AGE = 5 * 60
KEY_SALT = "accounts.once.fernet"


def _cookie(name: str) -> str:
    return f"gatecheck_once_{name}"


def _fernet() -> MultiFernet:
    """Encrypts under a key derived from SECRET_KEY; decrypts under it or
    one derived from a SECRET_KEY_FALLBACKS entry, so a key rotation does
    not lose a secret in flight."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return MultiFernet([Fernet(base64.urlsafe_b64encode(salted_hmac(KEY_SALT, "fernet", secret=key, algorithm="sha256").digest())) for key in keys])


def show_once(request: HttpRequest, name: str, value: Any, to: str, *args) -> HttpResponse:
    """Redirect to the URL named ``to`` (with ``args``), carrying ``value`` for that page alone."""
    response = redirect(to, *args)
    ticket = secrets.token_urlsafe(16)
    ShownOnceTicket.objects.create(user=request.user, digest=token_digest(ticket))
    payload = json.dumps({"u": request.user.pk, "n": name, "t": ticket, "v": value}).encode()
    # Fernet tokens are URL-safe base64; "=" padding would be quoted in a cookie.
    sealed = _fernet().encrypt(payload).decode().rstrip("=")
    response.set_cookie(
        _cookie(name), sealed, max_age=MAX_AGE, path=response.url, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict"
    )
    return response


def take(request: HttpRequest, name: str) -> Any:
    """The value carried for this page, or None (none, expired, tampered,
    another user's, or shown already). Taking it spends it: call ``forget``
    on the response that shows it."""
    sealed = request.COOKIES.get(_cookie(name), "")
    if not sealed:
        return None
    try:
        data = json.loads(_fernet().decrypt((sealed + "=" * (-len(sealed) % 4)).encode(), ttl=MAX_AGE))
    except (InvalidToken, ValueError):
        return None
    if not isinstance(data, dict) or data.get("u") != request.user.pk or data.get("n") != name:
        return None
    # Of two requests with the same cookie, one deletes the row; the other finds none.
    fresh = ShownOnceTicket.objects.filter(
        digest=token_digest(str(data.get("t", ""))), user_id=request.user.pk, created_at__gte=timezone.now() - timedelta(seconds=MAX_AGE)
    )
    if not fresh.delete()[0]:
        return None
    return data.get("v")


def forget(request: HttpRequest, response: HttpResponse, name: str) -> HttpResponse:
    """Delete the cookie on the page that showed it (a never_cache view, so
    no cache keeps the page either)."""
    response.delete_cookie(_cookie(name), path=request.path, samesite="Strict")
    return response


def tickets_prune(*, now: datetime) -> int:
    """Delete the tickets of secrets never shown, once they can no longer be."""
    return ShownOnceTicket.objects.filter(created_at__lt=now - timedelta(seconds=MAX_AGE)).delete()[0]
