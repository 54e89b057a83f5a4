"""Passkey parts of shared pages, so that the code step, step-up and the
security page only include a tag: ``{% load passkeys %}``."""

from __future__ import annotations

from django import template
from django_otp_webauthn.templatetags.otp_webauthn import get_configuration

from accounts.passkeys import has_passkey, passkeys

register = template.Library()


@register.inclusion_tag("accounts/passkeys/_verify.html", takes_context=True)
def passkey_verify(context):
    """'Use a passkey' at the code step and step-up, for users who have one."""
    request = context["request"]
    return {"request": request, "show": has_passkey(request.user)}


@register.inclusion_tag("accounts/passkeys/_scripts.html", takes_context=True)
def passkey_scripts(context, ceremony: str):
    """django-otp-webauthn's scripts for ``ceremony`` ("auth" or "register").

    Its own tags load the gettext catalog ``async``, so a quick click could
    run the button's handler before gettext exists and do nothing; here the
    catalog is ``defer``red, which runs it before the (deferred) module."""
    return {"configuration": get_configuration(context["request"]), "ceremony": ceremony}


@register.inclusion_tag("accounts/passkeys/_security.html", takes_context=True)
def passkey_list(context):
    """The passkeys card of the security page."""
    return {"passkeys": list(passkeys(context["request"].user))}
