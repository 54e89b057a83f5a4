"""Security checks that a view declares at its top.

Every view needs an MFA-verified session unless it says otherwise: the
MFARequiredMiddleware reads the marks that ``public`` and
``pending_login_allowed`` leave on a view.
"""

from __future__ import annotations

import time
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.urls import reverse


def public(view):
    """Reachable without signing in (login, sign-up, password reset, health)."""
    view.gatecheck_public = True
    return view


def pending_login_allowed(view):
    """Reachable after the password step, before the second factor."""
    view.gatecheck_pending_login = True
    return view


def mfa_is_recent(request) -> bool:
    verified_at = request.session.get("mfa_at", 0)
    return time.time() - verified_at <= settings.GATECHECK_STEP_UP_WINDOW


def recent_mfa_required(view):
    """Ask for a fresh code when the last verification is older than 15 minutes."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not mfa_is_recent(request):
            # After the code, the user comes back to this URL with a GET: a
            # sensitive action therefore shows a confirmation page on GET.
            target = request.get_full_path() if request.method == "GET" else request.path
            return redirect(f"{reverse('accounts:step_up')}?{urlencode({'next': target})}")
        return view(request, *args, **kwargs)

    return wrapper


def desk_lead_required(view):
    """Only leads of at least one desk (or staff) may pass; others get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_superuser or request.user.is_desk_lead):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper
