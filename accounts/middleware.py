"""Session lifetime rules and the MFA gate in front of every view."""

from __future__ import annotations

import re
import time
import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.views.defaults import page_not_found

from .decorators import mfa_is_recent
from .models import UserSession
from .policy import RECENT, step_up_policy

LAST_SEEN_WRITE_INTERVAL = 60


class SessionPolicyMiddleware:
    """Enforce on the server: idle timeout, absolute lifetime, the ten
    minutes allowed between the password step and the code step, and
    revocation: a signed-in session whose UserSession row is gone (ended from
    the security page, by a password change or an MFA reset) is signed out.

    Whatever changes the session key during a request (a sign-in step, a
    password change, code we do not own), the row follows the new key
    afterwards, so no live session is ever untracked.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import logs, services

        if request.user.is_authenticated:
            logs.user_id.set(request.user.pk)
            row = services.session_tracked_row(request)
            expired = (
                "This browser was signed out. Please sign in again."
                if row is None
                else services.session_problem(request.session, verified=request.user.is_verified(), now=time.time())
            )
            if expired:
                logout(request)
                messages.info(request, expired)
                return redirect(f"{reverse('accounts:login')}?{urlencode({'next': request.get_full_path()})}")
            self._touch(request, row)
        key_before = request.session.session_key
        response = self.get_response(request)
        if request.user.is_authenticated and request.session.session_key != key_before:
            services.session_track(request)
        return response

    @staticmethod
    def _touch(request, row: UserSession) -> None:
        now = time.time()
        if now - request.session.get("seen_at", 0) >= LAST_SEEN_WRITE_INTERVAL:
            request.session["seen_at"] = now
            UserSession.objects.filter(pk=row.pk).update(last_seen=_aware(now))


def _aware(ts: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, tz=UTC)


class MFARequiredMiddleware:
    """Deny by default: every view needs an MFA-verified session unless it is
    marked ``@public`` or ``@pending_login_allowed`` (accounts.decorators),
    and a code from the last 15 minutes where accounts.policy says so."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.user.is_authenticated:
            # Pages behind sign-in hold phone numbers, addresses and key
            # metadata: no browser or proxy cache may keep them.
            add_never_cache_headers(response)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if getattr(view_func, "gatecheck_public", False):
            return None
        user = request.user
        if not user.is_authenticated:
            return redirect(f"{reverse('accounts:login')}?{urlencode({'next': request.get_full_path()})}")
        if getattr(view_func, "gatecheck_pending_login", False):
            return None
        from .services import has_confirmed_factor, needs_authenticator

        if user.is_verified():
            # Signed in with a backup code and no authenticator app (an MFA
            # reset, or issue_backup_code): enrol one before anything else.
            if needs_authenticator(user):
                return redirect(f"{reverse('accounts:mfa_setup')}?{urlencode({'next': request.get_full_path()})}")
            if step_up_policy(request.resolver_match.view_name) == RECENT and not mfa_is_recent(request):
                # After the code, the user comes back to this URL with a GET: a
                # sensitive action therefore shows a confirmation page on GET.
                target = request.get_full_path() if request.method == "GET" else request.path
                return redirect(f"{reverse('accounts:step_up')}?{urlencode({'next': target})}")
            return None
        step = "accounts:login_code" if has_confirmed_factor(user) else "accounts:mfa_setup"
        return redirect(f"{reverse(step)}?{urlencode({'next': request.get_full_path()})}")


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


class RequestObservationMiddleware:
    """First in the chain: the request id (from the proxy's X-Request-ID when
    it is sane, else new) on every log line and in the response's
    X-Request-ID; the user id on log lines; the latency per view in /metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from . import logs, metrics

        given = request.META.get("HTTP_X_REQUEST_ID", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        request.request_id = rid
        tokens = (logs.request_id.set(rid), logs.user_id.set(None))
        began = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            logs.request_id.reset(tokens[0])
            logs.user_id.reset(tokens[1])
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        metrics.REQUEST_SECONDS.labels(view=view, method=request.method if request.method in KNOWN_METHODS else "other").observe(time.perf_counter() - began)
        response["X-Request-ID"] = rid
        return response


KNOWN_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class OwnNotFoundPageMiddleware:
    """With DEBUG on (``make run``), Django answers a missing page with its
    technical 404 (the URL list); show the app's own page instead, the one a
    trader meets in production. A 404 in JSON (the API's problem details)
    passes through untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DEBUG and response.status_code == 404 and response.get("Content-Type", "").startswith("text/html"):
            return page_not_found(request, Http404())
        return response
