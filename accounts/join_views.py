"""How people come in from outside: the page an invitation link opens, and
single sign-on (start, the provider's callback, linking from the security page)."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from . import invitations, services, signin, sso
from .audit import record_event
from .decorators import public
from .forms import InvitationAcceptForm, LoginForm
from .models import ExternalIdentity
from .views import safe_next


@public
@sensitive_post_parameters("password1", "password2")
@never_cache
@sso.form_may_reach_provider
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """Opening the link changes nothing (a mail scanner may open it). A new
    address chooses a username and password, then enrols a second factor; an
    existing account signs in and accepts; either may use single sign-on."""
    invitation = invitations.from_token(token)
    if invitation is None:
        return render(request, "accounts/invitation_invalid.html", status=400)
    here = reverse("accounts:invitation_accept", args=[token])
    context = {"invitation": invitation, "sso": sso.button(), "token": token}
    existing = invitations.account_for(invitation)
    if existing is not None:
        signed_in = request.user.is_authenticated and request.user.is_verified()
        if signed_in and request.user.pk == existing.pk and request.method == "POST":
            invitations.accept(invitation=invitation, user=request.user, request=request)
            messages.success(request, f"You joined the desk {invitation.desk.name}.")
            return redirect("checklist:dashboard")
        context |= {"existing": existing, "signed_in_as": request.user if signed_in else None,
                    "login_url": f"{reverse('accounts:login')}?{urlencode({'next': here})}"}
        return render(request, "accounts/invitation_accept.html", context)
    form = InvitationAcceptForm(request.POST or None, invitation=invitation)
    if request.method == "POST" and form.is_valid():
        user = invitations.create_account(invitation=invitation, form=form, request=request)
        if user is None:
            return render(request, "accounts/invitation_invalid.html", status=400)
        services.password_step_complete(request=request, user=user)
        return redirect(f"{reverse('accounts:mfa_setup')}?{urlencode({'next': reverse('checklist:dashboard')})}")
    return render(request, "accounts/invitation_accept.html", context | {"form": form})


# --- Single sign-on -------------------------------------------------------------------


@public
@require_POST
@sso.form_may_reach_provider
def sso_start(request: HttpRequest) -> HttpResponse:
    """The login page's (or an invitation's) button: off to the provider."""
    if not sso.configured():
        raise Http404
    try:
        return sso.begin(request, next_url=safe_next(request), invitation=request.POST.get("invitation", "")[:600])
    except sso.Refused as why:
        return _refused(request, why)


@require_POST
def sso_link(request: HttpRequest) -> HttpResponse:
    """The signed-in owner links their identity (policy: a fresh code)."""
    if not sso.configured():
        raise Http404
    try:
        return sso.begin(request, next_url=reverse("accounts:security"), link=True)
    except sso.Refused as why:
        messages.error(request, str(why))
        return redirect("accounts:security")


def _link_owner(request: HttpRequest, claims: dict, intent: dict) -> HttpResponse:
    """The end of a link started on the security page: back there, linked or told why not."""
    try:
        sso.link_owner(request, claims, intent)
    except sso.Refused as why:
        sso.refused(request, str(why), claims)
        messages.error(request, f"Single sign-on was not linked: {why}")
    else:
        messages.success(request, f"Single sign-on with {sso.button()} is linked to your account.")
    return redirect("accounts:security")


def _refused(request: HttpRequest, why: Exception, claims: dict | None = None) -> HttpResponse:
    sso.refused(request, str(why), claims)
    context = {"form": LoginForm(), "next": "/", "sso": sso.button(), "sso_error": f"Single sign-on did not sign you in: {why}"}
    return render(request, "accounts/login.html", context, status=403)


@require_POST
def sso_unlink(request: HttpRequest, pk: int) -> HttpResponse:
    sso.unlink(request, get_object_or_404(ExternalIdentity, pk=pk, user=request.user))
    messages.success(request, "Single sign-on is unlinked from your account.")
    return redirect("accounts:security")


@public
@never_cache
@sso.form_may_reach_provider
def sso_callback(request: HttpRequest) -> HttpResponse:
    """Where the provider sends the browser back. A verified identity stands
    for the password step; the code step follows unless the ID token's amr
    names a second factor (and even then step-up and the admin ask for it)."""
    if not sso.configured():
        raise Http404
    claims = None
    try:
        claims, intent = sso.finish(request)
        if intent.get("link"):
            return _link_owner(request, claims, intent)
        with transaction.atomic():
            user = sso.account_for(request, claims, intent)
    except sso.Refused as why:
        return _refused(request, why, claims)
    services.password_step_complete(request=request, user=user, action="login.sso")
    next_url = intent.get("next") or "/"
    if sso.skips_code(user, claims) and sso.session_mark_idp_verified(request):
        amr = [str(a) for a in claims.get("amr", [])][:5]
        record_event(action="login.success", request=request, object_label=user.username, details={"via": "sso", "amr": amr})
        return signin.browser_seen(request, redirect(next_url), session_row=services.session_row_id(request))
    step = "accounts:login_code" if services.has_confirmed_factor(user) else "accounts:mfa_setup"
    return redirect(f"{reverse(step)}?{urlencode({'next': next_url})}")
