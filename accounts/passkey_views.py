"""Passkey pages (add, name, remove) and the WebAuthn API the package's
scripts call, subclassed so that our rules hold on it.

Registration needs an MFA-verified session with a code from the last 15
minutes: ``check_can_register`` refuses anything less, in JSON the page's
script shows, whatever the middleware let through. Authentication is reachable
from the code step (password only) and from step-up; it runs the same
session bookkeeping, limits and audit events as a typed code.
"""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.i18n import JavaScriptCatalog
from django_otp_webauthn import exceptions
from django_otp_webauthn import views as webauthn

from . import passkeys, services, signin
from .audit import record_event
from .decorators import mfa_is_recent, pending_login_allowed
from .forms import RenameForm
from .views import safe_next


class StepUpNeeded(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_detail = "Confirm with a fresh code first: reload this page to get one."
    default_code = "step_up_needed"


class Locked(exceptions.OTPWebAuthnApiError):
    status_code = 429
    default_code = "locked"


class VerifiedRegistrationMixin:
    """A password alone must never add a factor: registering needs a
    verified session, confirmed in the last 15 minutes."""

    def check_can_register(self):
        if not self.request.user.is_verified():
            raise exceptions.NotVerified(detail="Sign in with your authenticator app first, then add a passkey.")
        if not mfa_is_recent(self.request):
            raise StepUpNeeded()


class RegistrationBegin(VerifiedRegistrationMixin, webauthn.BeginCredentialRegistrationView):
    pass


class RegistrationComplete(VerifiedRegistrationMixin, webauthn.CompleteCredentialRegistrationView):
    def post(self, *args, **kwargs):
        response = super().post(*args, **kwargs)
        device = passkeys.passkeys(self.request.user).get(pk=json.loads(response.content)["id"])
        passkeys.passkey_added(request=self.request, device=device)
        return response


class AuthenticationBegin(webauthn.BeginCredentialAuthenticationView):
    pass


class AuthenticationComplete(webauthn.CompleteCredentialAuthenticationView):
    """A passkey in place of a code: at the code step it verifies the
    session (new key, step-up time, session row); on step-up it renews the
    step-up time. Failures count against the code step's limits."""

    def post(self, *args, **kwargs):
        user = self.request.user
        if not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        buckets = services.failure_buckets(self.request, step="code", username=user.username)
        attempt, until = services.attempt_open(buckets)
        if until:
            services.login_failed(request=self.request, username=user.username, step="code", action="mfa.lockout")
            raise Locked(detail=f"Too many failed attempts. Try again after {until:%H:%M} UTC.")
        try:
            response = super().post(*args, **kwargs)
        except exceptions.OTPWebAuthnApiError:
            services.login_failed(request=self.request, username=user.username, step="code")
            raise
        services.attempt_succeeded(attempt)
        if getattr(self, "signed_in", False):
            return signin.browser_seen(self.request, response, session_row=services.session_row_id(self.request))
        return response

    def complete_auth(self, device):
        request = self.request
        if device.user_id != request.user.pk:
            raise exceptions.CredentialUserMismatch()
        if request.user.is_verified():
            services.step_up(request=request)
            record_event(action="mfa.step_up", request=request, object_label=device.name)
        else:
            services.session_mark_verified(request, device)
            record_event(action="login.success", request=request, object_label=device.name)
            self.signed_in = True

    def get_success_url(self):
        user = self.request.user
        return safe_next(self.request, default=reverse("desk:dashboard") if user.is_desk_lead else "/")


registration_begin = RegistrationBegin.as_view()
registration_complete = RegistrationComplete.as_view()
authentication_begin = pending_login_allowed(AuthenticationBegin.as_view())
authentication_complete = pending_login_allowed(AuthenticationComplete.as_view())
# gettext() for the package's scripts, which the code step loads too.
javascript_catalog = pending_login_allowed(JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]))


@never_cache
def passkey_add(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/passkeys/add.html")


def passkey_rename(request: HttpRequest, pk: int) -> HttpResponse:
    """Also the page a new passkey lands on, to be given a name."""
    device = get_object_or_404(passkeys.passkeys(request.user), pk=pk)
    added = request.GET.get("added") == "1"
    form = RenameForm(request.POST or None, initial={"name": "" if added else device.name})
    if request.method == "POST" and form.is_valid():
        passkeys.passkey_rename(request=request, device=device, name=form.cleaned_data["name"])
        messages.success(request, f"Passkey '{device.name}' saved.")
        return redirect("accounts:security")
    return render(request, "accounts/passkeys/rename.html", {"form": form, "device": device, "added": added})


def passkey_remove(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(passkeys.passkeys(request.user), pk=pk)
    if request.method != "POST":
        return render(request, "accounts/confirm.html", {
            "title": f"Remove passkey '{device.name}'",
            "body": "It can no longer confirm sign-ins, and browsers it verified must verify again.",
            "button": "Remove passkey",
            "danger": True,
        })
    passkeys.passkey_remove(request=request, device=device)
    messages.success(request, f"Passkey '{device.name}' removed.")
    return redirect("accounts:security")
