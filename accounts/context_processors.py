"""Navigation shown in the header for a verified user."""

from __future__ import annotations


def navigation(request):
    user = getattr(request, "user", None)
    verified = bool(user is not None and user.is_authenticated and user.is_verified())
    return {
        "mfa_verified": verified,
        "show_desk": verified and (getattr(request, "gatecheck_desk_lead", False) or user.is_superuser or user.is_desk_lead),
    }
