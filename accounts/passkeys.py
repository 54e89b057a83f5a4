"""Passkeys and security keys (django-otp-webauthn) as a second factor: the
writes with side effects, as accounts.services does for authenticator apps.

A passkey is a django-otp device, so django_otp.user_has_device, the MFA
reset and the admin's OTP check count it without help from here.
"""

from __future__ import annotations

from django.http import HttpRequest
from django_otp_webauthn.models import WebAuthnCredential

from . import services, signin
from .audit import record_event
from .models import User

DEFAULT_NAME = "Passkey"


def passkeys(user: User):
    """The user's confirmed passkeys and security keys, newest first."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("-created_at", "-pk")


def has_passkey(user: User) -> bool:
    return user.is_authenticated and passkeys(user).exists()


def passkey_added(*, request: HttpRequest, device: WebAuthnCredential) -> None:
    """After the browser's registration ceremony: a plain default name (the
    user names it on the next page), an audit event and an e-mail."""
    if not device.name:
        device.name = DEFAULT_NAME
        device.save(update_fields=["name"])
    record_event(action="mfa.passkey_added", request=request, object_label=device.name)
    signin.trust_void(user=device.user, reason="passkey added", request=request)
    services.security_notice(device.user, "A new passkey was added", "A passkey or security key was added to your Gatecheck account.")


def passkey_rename(*, request: HttpRequest, device: WebAuthnCredential, name: str) -> None:
    old = device.name
    device.name = name
    device.save(update_fields=["name"])
    record_event(action="mfa.passkey_renamed", request=request, object_label=name, details={"name": [old, name]})


def passkey_remove(*, request: HttpRequest, device: WebAuthnCredential) -> None:
    """Remove a passkey. Sessions it verified lose their verification, as
    with an authenticator app: django-otp can no longer load their device."""
    name = device.name
    device.delete()
    record_event(action="mfa.passkey_removed", request=request, object_label=name)
    signin.trust_void(user=request.user, reason="passkey removed", request=request)
    services.security_notice(request.user, "A passkey was removed", f"The passkey '{name}' was removed from your Gatecheck account.")
