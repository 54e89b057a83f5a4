"""Passkey parts of shared pages, so that the code step, step-up and the
security page only include a tag: ``{% load passkeys %}``."""

from __future__ import annotations

from django import template

from accounts.passkeys import has_passkey, passkeys

register = template.Library()


@register.inclusion_tag("accounts/passkeys/_verify.html", takes_context=True)
def passkey_verify(context):
    """'Use a passkey' at the code step and step-up, for users who have one."""
    request = context["request"]
    return {"request": request, "show": has_passkey(request.user)}


@register.inclusion_tag("accounts/passkeys/_security.html", takes_context=True)
def passkey_list(context):
    """The passkeys card of the security page."""
    return {"passkeys": list(passkeys(context["request"].user))}
