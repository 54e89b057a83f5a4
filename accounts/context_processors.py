"""Navigation shown in the header for a verified user."""

from __future__ import annotations


def navigation(request):
    user = getattr(request, "user", None)
    verified = bool(user is not None and user.is_authenticated and user.is_verified())
    return {
        "mfa_verified": verified,
        # A view that already asked whether this user leads a desk says so on the request.
        "show_desk": verified and (user.is_superuser or _leads(request, user)),
    }


def _leads(request, user) -> bool:
    known = getattr(request, "gatecheck_desk_lead", None)
    return user.is_desk_lead if known is None else known
