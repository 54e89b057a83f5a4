"""Security checks that a view declares at its top.

Every view needs an MFA-verified session unless it says otherwise: the
MFARequiredMiddleware reads the marks that ``public`` and
``pending_login_allowed`` leave on a view. Which views need a fresh code is
declared in one table, accounts.policy.
"""

from __future__ import annotations

import time
from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied


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


def desk_lead_required(view):
    """Only leads of at least one desk (or staff) may pass; others get 403."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.oversees_desks:
            raise PermissionDenied
        # The header's nav asks the same question: answered once per request.
        request.gatecheck_desk_lead = True
        return view(request, *args, **kwargs)

    return wrapper
