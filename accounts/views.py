"""Sign-in, enrolment, step-up and the security page."""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, logout
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from prometheus_client import CONTENT_TYPE_LATEST

from . import background, channels, metrics, once, services, signin, sso, tokens
from .audit import record_event
from .decorators import pending_login_allowed, public
from .forms import (
    AlertChannelForm,
    AlertEventsForm,
    ApiTokenForm,
    CodeForm,
    EmailChangeForm,
    EnrolForm,
    EnrolmentCodeForm,
    LoginCodeForm,
    LoginForm,
    QueuedPasswordResetForm,
    RenameForm,
    SignupForm,
)
from .models import AlertChannel, ApiToken, AuditEvent, ExternalIdentity, RecoveryCodeDevice, TrustedBrowser, User, UserSession
from .net import client_ip


def safe_next(request: HttpRequest, default: str = "/") -> str:
    """Only same-site relative paths; anything else falls back to ``default``."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if (
        target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    ):
        return target
    return default


def _locked_message(until) -> str:
    return f"Too many failed attempts. Try again after {until:%H:%M} UTC."


@public
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers and commits a write and background work
    keeps up; otherwise 503 naming each check that failed."""
    return _health(services.health_checks())


@public
def healthz_web(request: HttpRequest) -> JsonResponse:
    """The web node's own health, for load balancers: the database checks alone."""
    return _health(services.health_checks(background=False))


def _health(checks: dict[str, str]) -> JsonResponse:
    failed = [name for name, result in checks.items() if result != "ok"]
    if failed:
        return JsonResponse({"status": "error", **checks, "failed": failed}, status=503)
    return JsonResponse({"status": "ok", **checks})


@public
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics, for a scraper holding GATECHECK_METRICS_TOKEN or on
    a network in GATECHECK_METRICS_NETWORKS; anyone else gets a 404."""
    if not metrics.scrape_allowed(request, client_ip(request)):
        raise Http404
    return HttpResponse(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


@never_cache
def background_status(request: HttpRequest) -> HttpResponse:
    """Superusers: the state of background work on one page."""
    if not request.user.is_superuser:
        raise Http404
    state = background.background_state()
    return render(request, "accounts/background.html", {"state": state, "checks": background.health_background(state["now"])})


@public
@sensitive_post_parameters("password")
@never_cache
@sso.form_may_reach_provider
def login_view(request: HttpRequest) -> HttpResponse:
    next_url = safe_next(request)
    if request.user.is_authenticated and request.user.is_verified():
        return redirect(next_url)
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        buckets = services.failure_buckets(request, step="password", username=username)
        attempt, until = services.attempt_open(buckets)
        if until:
            services.login_failed(request=request, username=username, step="password", action="login.lockout")
            form.add_error(None, _locked_message(until))
        else:
            user = authenticate(request, username=User.normalize_username(username), password=form.cleaned_data["password"])
            if user is None:
                services.login_failed(request=request, username=username, step="password")
                form.add_error(None, "That username and password do not match. Check both and try again.")
            else:
                services.attempt_succeeded(attempt)
                services.password_step_complete(request=request, user=user)
                step = "accounts:login_code" if services.has_confirmed_factor(user) else "accounts:mfa_setup"
                return redirect(f"{reverse(step)}?{urlencode({'next': next_url})}")
    return render(request, "accounts/login.html", {"form": form, "next": next_url, "signup_open": settings.GATECHECK_SIGNUP_OPEN, "sso": sso.button()})


@pending_login_allowed
@sensitive_post_parameters("otp_token")
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    next_url = _home_or_next(request)
    if request.user.is_verified():
        return redirect(next_url)
    if not services.has_confirmed_factor(request.user):
        return redirect("accounts:mfa_setup")
    if services.session_mark_trusted(request):
        return signin.browser_seen(request, redirect(next_url), session_row=services.session_row_id(request))
    offer = signin.trust_offered(request.user)
    form = LoginCodeForm(request.POST or None, trust_hours=signin.trust_lifetime(request.user).total_seconds() // 3600 if offer else None)
    if request.method == "POST" and form.is_valid():
        device = _verify_with_limits(request, form)
        if device is not None:
            services.session_mark_verified(request, device)
            record_event(action="login.success", request=request, object_label=device.name)
            _note_backup_code_use(request, device)
            response = redirect(next_url)
            if form.cleaned_data.get("trust_browser"):
                signin.browser_trust(request=request, response=response, device=device)
            return signin.browser_seen(request, response, session_row=services.session_row_id(request))
    return render(request, "accounts/login_code.html", {"form": form, "next": next_url})


def _home_or_next(request: HttpRequest) -> str:
    """Where a sign-in ends: the page ``next`` names, else home. A desk lead's
    home is the desk, a trader's the dashboard; "/" names no page (the login
    form passes it on when it was given none)."""
    home = reverse("desk:dashboard") if request.user.is_desk_lead else "/"
    target = safe_next(request, default=home)
    return home if target == "/" else target


def _note_backup_code_use(request: HttpRequest, device) -> None:
    if isinstance(device, RecoveryCodeDevice):
        record_event(action="mfa.backup_code_used", request=request, object_label=device.name)
        left = device.remaining()
        messages.warning(request, f"You used a backup code. {left} left; regenerate them on the security page when few remain.")


def _verify_with_limits(request: HttpRequest, form: CodeForm):
    """Verify the form's code under the account, IP and per-device limits;
    puts a clear error on the form and returns None when it fails."""
    user = request.user
    token = form.cleaned_data["otp_token"]
    buckets = services.failure_buckets(request, step="code", username=user.username)
    attempt, until = services.attempt_open(buckets)
    if until:
        services.login_failed(request=request, username=user.username, step="code", action="mfa.lockout")
        form.add_error("otp_token", _locked_message(until))
        return None
    throttled = services.throttled_until(user, token)
    device = None if throttled else services.second_factor_verify(user=user, token=token)
    if device is None:
        services.login_failed(request=request, username=user.username, step="code")
        if throttled:
            form.add_error("otp_token", f"Too many wrong codes in a row. Wait until {throttled:%H:%M:%S} UTC, then use a new code.")
        else:
            form.add_error("otp_token", "That code is not valid, or was already used. Use the current code from your app.")
    else:
        services.attempt_succeeded(attempt)
    return device


@pending_login_allowed
@sensitive_post_parameters("otp_token")
@never_cache
def mfa_setup(request: HttpRequest) -> HttpResponse:
    """First enrolment: right after the password step, or after signing in
    with a backup code when no authenticator app is left."""
    if request.user.is_verified():
        if not services.needs_authenticator(request.user):
            return redirect("accounts:authenticator_add")
    elif services.has_confirmed_factor(request.user):
        return redirect("accounts:login_code")
    elif not signin.enrolment_gate_open(request):
        return _enrolment_code(request)
    return _enrol(request, first=True)


def _enrolment_code(request: HttpRequest) -> HttpResponse:
    """After an MFA reset the password alone does not enrol a factor: the
    code the lead handed over out of band comes first, under the same limits
    as a sign-in code."""
    form = EnrolmentCodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = request.user
        buckets = services.failure_buckets(request, step="enrol", username=user.username)
        attempt, until = services.attempt_open(buckets)
        row = signin.enrolment_code_for(user)
        if until:
            services.login_failed(request=request, username=user.username, step="enrol", action="mfa.lockout")
            form.add_error("code", _locked_message(until))
        elif not row.matches(form.cleaned_data["code"]):
            services.login_failed(request=request, username=user.username, step="enrol", action="mfa.enrolment_code_failure")
            form.add_error("code", "That enrolment code is not right. Check it with your desk lead and try again.")
        elif not row.pending:
            services.login_failed(request=request, username=user.username, step="enrol", action="mfa.enrolment_code_failure")
            form.add_error("code", "That enrolment code has expired. Ask your desk lead to reset your two-factor sign-in again.")
        else:
            services.attempt_succeeded(attempt)
            signin.enrolment_code_accepted(request, row)
            return redirect(f"{reverse('accounts:mfa_setup')}?{urlencode({'next': safe_next(request)})}")
    return render(request, "accounts/enrolment_code.html", {"form": form, "next": safe_next(request)})


@sensitive_post_parameters("otp_token")
@never_cache
def authenticator_add(request: HttpRequest) -> HttpResponse:
    return _enrol(request, first=False)


def _enrol(request: HttpRequest, *, first: bool) -> HttpResponse:
    device = services.totp_pending_device(request.user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if services.totp_confirm(request=request, device=device, token=form.cleaned_data["otp_token"], name=form.cleaned_data["name"]):
            if first:
                signin.enrolment_code_consume(request)
                codes = services.backup_codes_generate(user=request.user, request=request)
                response = _show_codes(request, codes, first=True)
                return signin.browser_seen(request, response, session_row=services.session_row_id(request), first_enrolment=True)
            messages.success(request, f"Authenticator '{form.cleaned_data['name']}' added.")
            return redirect("accounts:security")
        allowed, why = device.verify_is_allowed()
        if not allowed and (why or {}).get("locked_until"):
            # The same honest message as the code step and step-up.
            form.code_refused(f"Too many wrong codes in a row. Wait until {why['locked_until']:%H:%M:%S} UTC, then use a new code.")
        else:
            form.code_refused("That code did not match. Check the time on your phone and enter the current code.")
    otpauth_url = device.config_url
    secret = otpauth_url.split("secret=")[1].split("&")[0]
    qr_svg = qrcode.make(otpauth_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).to_string(encoding="unicode")
    context = {
        "form": form,
        "qr_svg": qr_svg,
        # On the phone that runs the app, a link opens it with the account filled in.
        "otpauth_url": otpauth_url,
        # Typed by hand from groups of four, each kept on one line.
        "secret_groups": [secret[i : i + 4] for i in range(0, len(secret), 4)],
        "first": first,
    }
    response = render(request, "accounts/mfa_setup.html", context)
    response["Cache-Control"] = "no-store"
    return response


def _show_codes(request: HttpRequest, codes: list[str], *, first: bool) -> HttpResponse:
    """POST, redirect, GET: the page after the redirect shows the new codes
    once (accounts.once), so a reload neither re-posts the form nor shows them again."""
    return once.show_once(request, "backup_codes", {"codes": codes, "first": first}, "accounts:backup_codes_shown")


@never_cache
def backup_codes_shown(request: HttpRequest) -> HttpResponse:
    shown = once.take(request, "backup_codes")
    if shown is None:
        return render(request, "accounts/backup_codes.html", {"codes": None})
    codes = shown["codes"]
    response = render(request, "accounts/backup_codes.html", {"codes": codes, "codes_text": "\n".join(codes), "first": shown["first"]})
    return once.forget(request, response, "backup_codes")


@sensitive_post_parameters("otp_token")
@never_cache
def step_up(request: HttpRequest) -> HttpResponse:
    """Ask for a fresh code before a sensitive action, then go back to it."""
    next_url = safe_next(request)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = _verify_with_limits(request, form)
        if device is not None:
            services.step_up(request=request)
            record_event(action="mfa.step_up", request=request, object_label=device.name)
            _note_backup_code_use(request, device)
            return redirect(next_url)
    return render(request, "accounts/step_up.html", {"form": form, "next": next_url})


@never_cache
@sso.form_may_reach_provider
def security(request: HttpRequest) -> HttpResponse:
    user = request.user
    backup = RecoveryCodeDevice.objects.filter(user=user).first()
    context = {
        "authenticators": services.totp_devices(user),
        "backup_left": backup.remaining() if backup else 0,
        "sessions": services.sessions_live(user=user),
        "current_row": services.session_row_id(request),
        "events": AuditEvent.objects.for_user(user).select_related("actor")[:20],
        "trusted_browsers": TrustedBrowser.objects.for_user(user).live(),
        "current_trust": signin.trust_cookie_row(request),
        "api_tokens": ApiToken.objects.for_user(user).filter(revoked_at__isnull=True),
        "identities": ExternalIdentity.objects.filter(user=user),
        "sso": sso.button(),
    }
    return render(request, "accounts/security.html", context)


@never_cache
def api_token_add(request: HttpRequest) -> HttpResponse:
    """A new API token (behind step-up, accounts.policy); shown once on the next page."""
    form = ApiTokenForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            token, secret = tokens.create(user=request.user, name=data["name"], scope=data["scope"], days=data["days"], request=request)
        except tokens.TokenRefused as refused:
            form.add_error(refused.field if refused.field in form.fields else None, str(refused))
        else:
            return once.show_once(request, "api_token", {"token": token.pk, "secret": secret}, "accounts:api_token_shown")
    return render(request, "accounts/api_token_add.html", {"form": form})


@never_cache
def api_token_shown(request: HttpRequest) -> HttpResponse:
    shown = once.take(request, "api_token")
    token = ApiToken.objects.for_user(request.user).filter(pk=shown["token"]).first() if shown else None
    response = render(request, "accounts/api_token_shown.html", {"token": token, "secret": shown["secret"] if token else None})
    return once.forget(request, response, "api_token") if token else response


@never_cache
def alerts(request: HttpRequest) -> HttpResponse:
    """The person's alert channels (masked) with their events, tests and removal."""
    return _alerts_page(request, AlertChannelForm())


@sensitive_post_parameters("url")
@never_cache
def alert_channel_add(request: HttpRequest) -> HttpResponse:
    """Add a channel (behind a fresh code: alerts and security notices will go somewhere new)."""
    if request.method != "POST":
        return redirect("accounts:alerts")
    form = AlertChannelForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            channel = channels.add(user=request.user, url=data["url"], name=data["name"], events=data["events"], request=request)
        except channels.ChannelRefused as refused:
            form.add_error(refused.field if refused.field in form.fields else None, str(refused))
        else:
            messages.success(request, f"Channel '{channel.name}' added. Send it a test to see it arrive.")
            return redirect("accounts:alerts")
    return _alerts_page(request, form)


def _alerts_page(request: HttpRequest, form: AlertChannelForm) -> HttpResponse:
    rows = [(c, AlertEventsForm(initial={"events": c.events}, prefix=f"c{c.pk}")) for c in AlertChannel.objects.filter(user=request.user)]
    return render(request, "accounts/alerts.html", {"form": form, "rows": rows, "failing_after": channels.FAILING_AFTER})


def _own_channel(request: HttpRequest, pk: int) -> AlertChannel:
    return get_object_or_404(AlertChannel.objects.filter(user=request.user), pk=pk)


@require_POST
def alert_channel_test(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _own_channel(request, pk)
    channels.channel_send.enqueue(channel.pk, "[Gatecheck] Test message", f"This is a test of your alert channel '{channel.name}'. It works.")
    messages.success(request, f"A test is on its way to '{channel.name}'. If it does not arrive, check the URL; the page shows each failure.")
    return redirect("accounts:alerts")


@require_POST
def alert_channel_events(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _own_channel(request, pk)
    form = AlertEventsForm(request.POST, prefix=f"c{channel.pk}")
    if form.is_valid():
        channels.events_set(channel=channel, events=form.cleaned_data["events"], request=request)
        messages.success(request, f"Events of '{channel.name}' saved.")
    else:
        messages.error(request, f"Choose at least one event for '{channel.name}'.")
    return redirect("accounts:alerts")


def alert_channel_remove(request: HttpRequest, pk: int) -> HttpResponse:
    channel = _own_channel(request, pk)
    if request.method != "POST":
        return render(request, "accounts/confirm.html", {
            "title": f"Remove alert channel '{channel.name}'",
            "body": "Alerts stop going there at once.",
            "button": "Remove channel",
            "danger": True,
        })
    channels.remove(channel=channel, request=request)
    messages.success(request, f"Channel '{channel.name}' removed.")
    return redirect("accounts:alerts")


@require_POST
def api_token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(ApiToken.objects.for_user(request.user), pk=pk)
    tokens.revoke(token=token, reason="revoked on the security page", request=request)
    messages.success(request, f"API token '{token.name}' revoked; it stops working at once.")
    return redirect("accounts:security")


def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "accounts/confirm.html", {
            "title": "Regenerate backup codes",
            "body": "Your current backup codes stop working at once and ten new ones are shown a single time.",
            "button": "Regenerate codes",
        })
    codes = services.backup_codes_generate(user=request.user, request=request)
    services.security_notice(request.user, "New backup codes", "New backup codes were generated; the old ones no longer work.")
    return _show_codes(request, codes, first=False)


def authenticator_rename(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(services.totp_devices(request.user), pk=pk)
    form = RenameForm(request.POST or None, initial={"name": device.name})
    if request.method == "POST" and form.is_valid():
        services.authenticator_rename(request=request, device=device, name=form.cleaned_data["name"])
        messages.success(request, "Authenticator renamed.")
        return redirect("accounts:security")
    return render(request, "accounts/authenticator_rename.html", {"form": form, "device": device})


def authenticator_remove(request: HttpRequest, pk: int) -> HttpResponse:
    device = get_object_or_404(services.totp_devices(request.user), pk=pk)
    if services.totp_devices(request.user).count() <= 1:
        messages.error(request, "This is your only authenticator app. Add another one before removing it.")
        return redirect("accounts:security")
    if request.method != "POST":
        return render(request, "accounts/confirm.html", {
            "title": f"Remove authenticator '{device.name}'",
            "body": "Codes from this app stop working, and browsers it verified must verify again.",
            "button": "Remove authenticator",
            "danger": True,
        })
    services.authenticator_remove(request=request, device=device)
    messages.success(request, f"Authenticator '{device.name}' removed.")
    return redirect("accounts:security")


@require_POST
def session_end(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(UserSession.objects.filter(user=request.user), pk=pk)
    if row.pk == services.session_row_id(request):
        raise Http404
    services.session_end(row)
    record_event(action="session.ended", request=request, object_label=row.user_agent[:100])
    messages.success(request, "That session was signed out.")
    return redirect("accounts:security")


@require_POST
def trusted_browser_forget(request: HttpRequest, pk: int) -> HttpResponse:
    row = get_object_or_404(TrustedBrowser.objects.for_user(request.user), pk=pk)
    signin.browser_forget(request=request, row=row)
    messages.success(request, "That browser will ask for a code again at its next sign-in.")
    return redirect("accounts:security")


@require_POST
def sessions_end_others(request: HttpRequest) -> HttpResponse:
    count = services.sessions_end(user=request.user, keep=services.session_row_id(request))
    record_event(action="session.ended_others", request=request, details={"count": count})
    messages.success(request, f"Signed out {count} other session(s).")
    return redirect("accounts:security")


@public
@never_cache
def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link of a verification e-mail (a GET only confirms an address the
    account already has, so a mail scanner opening it does no harm)."""
    user = signin.email_verify(request=request, token=token)
    if user is None:
        return render(request, "accounts/email_verify_failed.html", status=400)
    messages.success(request, f"Thank you: {user.email} is confirmed.")
    return redirect("checklist:dashboard" if request.user.is_authenticated else "accounts:login")


@sensitive_post_parameters()
def email_change(request: HttpRequest) -> HttpResponse:
    form = EmailChangeForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        signin.email_change(request=request, user=request.user, email=form.cleaned_data["email"])
        messages.success(request, f"We sent a link to {form.cleaned_data['email']}. Follow it to confirm the address.")
        return redirect("accounts:security")
    return render(request, "accounts/email_change.html", {"form": form})


@require_POST
def email_verification_resend(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.email_verified or not user.email:
        return redirect("accounts:security")
    _, until = services.attempt_open([(f"verify-mail:{user.pk}", settings.GATECHECK_VERIFY_MAIL_LIMIT)])
    if until:
        messages.error(request, f"Several links went out already. Check your inbox (and spam folder), or try again after {until:%H:%M} UTC.")
    else:
        signin.email_verification_send(request=request, user=user)
        messages.success(request, f"We sent a new link to {user.email}.")
    return redirect(safe_next(request, default=reverse("accounts:security")))


EMAIL_BANNER_COOKIE = "gatecheck_email_banner_hidden"


def email_banner_shown(request: HttpRequest) -> bool:
    """The unconfirmed-address banner, unless this browser hid it for this
    user within the last day."""
    return not request.user.email_verified and request.COOKIES.get(EMAIL_BANNER_COOKIE) != str(request.user.pk)


@require_POST
def email_banner_hide(request: HttpRequest) -> HttpResponse:
    """"Hide for a day": a cookie for this browser and user, 24 hours long."""
    response = redirect(safe_next(request, default=reverse("checklist:dashboard")))
    response.set_cookie(
        EMAIL_BANNER_COOKIE, str(request.user.pk), max_age=24 * 60 * 60, secure=settings.SESSION_COOKIE_SECURE, httponly=True, samesite="Lax"
    )
    return response


@public
@never_cache
def not_me(request: HttpRequest, token: str) -> HttpResponse:
    """The "this wasn't me" link of a new-browser e-mail. A GET only asks
    (mail scanners open links); the button's POST acts, once."""
    alert = signin.alert_from_token(token)
    if alert is None:
        return render(request, "accounts/not_me.html", {"alert": None}, status=400)
    if request.method == "POST":
        if services.sign_in_reported(request=request, alert=alert):
            logout(request)
            messages.warning(
                request,
                "That browser was signed out, and so was every other. Your password no longer works: "
                "enter your e-mail address to get a link and choose a new one.",
            )
            return redirect("accounts:password_reset")
        return render(request, "accounts/not_me.html", {"alert": None}, status=400)
    return render(request, "accounts/not_me.html", {"alert": alert, "browser": alert.known_browser})


@public
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        record_event(action="logout", request=request)
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


@public
@sensitive_post_parameters("password1", "password2")
@never_cache
def signup(request: HttpRequest) -> HttpResponse:
    if not settings.GATECHECK_SIGNUP_OPEN:
        raise Http404
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        record_event(action="account.created", request=request, actor=user, object_label=user.username)
        services.password_step_complete(request=request, user=user)
        signin.email_verification_send(request=request, user=user)
        return redirect("accounts:mfa_setup")
    return render(request, "accounts/signup.html", {"form": form})


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:security")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed(request=self.request, user=form.user)
        messages.success(self.request, "Password changed. Other sessions were signed out.")
        return response


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Sets a new password; the user then signs in with it and a second factor.

    post_reset_login stays False: a reset link never yields a verified session.
    """

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.access_revoke(user=form.user)
        record_event(action="password.reset", request=self.request, actor=form.user, object_label=form.user.username)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Sends a reset link; requests are capped per client IP and per recipient
    address, so that the form cannot be used to flood anyone's mailbox."""

    template_name = "accounts/password_reset.html"
    form_class = QueuedPasswordResetForm
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        buckets = [(f"reset:ip:{services.ip_bucket(ip)}", settings.GATECHECK_RESET_LIMIT) for ip in [client_ip(self.request)] if ip]
        _, until = services.attempt_open(buckets)
        if until:
            form.add_error(None, f"Too many reset requests from your network. Try again after {until:%H:%M} UTC.")
            return self.form_invalid(form)
        # Counted for any address typed, known or not; over the cap the page
        # reads as usual, so it tells nobody whether the address has an account.
        recipient = [(f"reset:to:{services.username_digest(form.cleaned_data['email'])}", settings.GATECHECK_RESET_RECIPIENT_LIMIT)]
        _, until = services.attempt_open(recipient)
        if until:
            return redirect(self.get_success_url())
        return super().form_valid(form)


password_reset = public(PasswordResetView.as_view())
password_reset_done = public(auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html"))
password_reset_confirm = public(PasswordResetConfirmView.as_view())
password_reset_complete = public(
    auth_views.PasswordResetCompleteView.as_view(template_name="accounts/password_reset_complete.html")
)
password_change = PasswordChangeView.as_view()
