"""A secret shown once, on the page after a POST/redirect/GET (backup codes,
the calendar address, a ping address, an enrolment code).

It travels to that page in a signed, five-minute, HttpOnly cookie scoped to
the page's path and bound to the user, and the page deletes it as it shows
it: the secret is never written to the session table, so a reader of the
database (a backup, a replica) finds none, and a reload shows it no more.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

MAX_AGE = 5 * 60


def _cookie(name: str) -> str:
    return f"gatecheck_once_{name}"


def show_once(request: HttpRequest, name: str, value: Any, to: str, *args) -> HttpResponse:
    """Redirect to the URL named ``to`` (with ``args``), carrying ``value`` for that page alone."""
    response = redirect(to, *args)
    signed = signing.dumps({"u": request.user.pk, "v": value}, salt=_cookie(name), compress=True)
    response.set_cookie(
        _cookie(name), signed, max_age=MAX_AGE, path=response.url, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Strict"
    )
    return response


def take(request: HttpRequest, name: str) -> Any:
    """The value carried for this page, or None (none, expired, tampered, another user's).
    Call ``forget`` on the response that shows it."""
    try:
        data = signing.loads(request.COOKIES.get(_cookie(name), ""), salt=_cookie(name), max_age=MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != request.user.pk:
        return None
    return data.get("v")


def forget(request: HttpRequest, response: HttpResponse, name: str) -> HttpResponse:
    """Delete the cookie on the page that showed it (a never_cache view, so
    no cache keeps the page either)."""
    response.delete_cookie(_cookie(name), path=request.path, samesite="Strict")
    return response
