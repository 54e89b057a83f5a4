"""Pages for the credential inventory: devices, recovery methods, API keys,
and automations.

Views bind a form or look an object up through ``for_owner`` (another
trader's id is a 404, for GET and POST alike), call one service, then
redirect or render. One-click actions are POST forms; on GET the same URL
shows a confirmation page, which is also where a step-up code sends the
trader back to.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db import IntegrityError
from django.db.models import Model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import once
from accounts.decorators import public
from accounts.net import client_ip
from readiness.rules import ping_slug, run_durations
from readiness.vocabulary import HEARTBEAT_STATUSES, HEARTBEAT_TAGS

from . import incidents, schedules, services
from .forms import ApiKeyForm, AutomationForm, HeartbeatForm, RecoveryMethodForm, TrustedDeviceForm
from .models import ApiKey, Automation, Heartbeat, HeartbeatSignal, PingKey, RecoveryMethod, TrustedDevice
from .selectors import broker_of, findings_for

# --- Shared shapes ----------------------------------------------------------


def _form_page(
    request: HttpRequest,
    form,
    *,
    save: Callable[[dict[str, Any]], Any],
    done: Callable[[Any], str],
    list_url: str,
    title: str,
    intro: str = "",
    button: str = "Save",
    status_actions: tuple[tuple[str, str], ...] = (),
) -> HttpResponse:
    if request.method == "POST" and form.is_valid():
        try:
            result = save(form.cleaned_data)
        except IntegrityError:
            # Only a same-name row saved between the form's check and ours
            # (a parallel request) gets here: the message of the sequential case.
            form.add_duplicate_error()
        else:
            messages.success(request, done(result))
            return redirect(list_url)
    context = {"form": form, "title": title, "intro": intro, "button": button, "cancel_url": reverse(list_url), "status_actions": status_actions}
    return render(request, "devices/form.html", context)


def _action_page(
    request: HttpRequest,
    *,
    run: Callable[[], Any],
    title: str,
    body: str,
    button: str,
    done: str,
    list_url: str,
    danger: bool = False,
    done_level: int = messages.SUCCESS,
    always_confirm: bool = False,
    steps: tuple[str, ...] = (),
) -> HttpResponse:
    """A one-click action: POST does it; GET (a direct visit, or the return
    from a step-up code) asks for confirmation first. With ``always_confirm``
    only the confirmation page's own POST does it."""
    if request.method != "POST" or (always_confirm and request.POST.get("confirmed") != "yes"):
        context = {
            "title": title, "body": body, "button": button, "danger": danger, "cancel_url": reverse(list_url),
            "confirm_field": always_confirm, "steps": steps,
        }
        return render(request, "devices/confirm.html", context)
    run()
    messages.add_message(request, done_level, done)
    return redirect(list_url)


def _owned(model: type[Model], request: HttpRequest, pk: int) -> Any:
    """The signed-in trader's object, or 404 (another trader's id included)."""
    return get_object_or_404(model.objects.for_owner(request.user), pk=pk)


# --- Trusted devices --------------------------------------------------------


def _list_page(request: HttpRequest, template: str, section: str, objects, **extra) -> HttpResponse:
    """A list page: each row with the findings the rules give for it, and
    what the section is missing above the list (findings about no item)."""
    findings = findings_for(request.user, section, timezone.localdate())
    rows = [(item, findings.get(item.pk, ())) for item in objects]
    return render(request, template, {"rows": rows, "missing": findings.get(None, ()), **extra})


def device_list(request: HttpRequest) -> HttpResponse:
    devices = sorted(TrustedDevice.objects.for_owner(request.user), key=TrustedDevice.sort_key)
    return _list_page(request, "devices/device_list.html", "devices", devices, catalog=broker_of(request.user))


@sensitive_post_parameters()
def device_add(request: HttpRequest) -> HttpResponse:
    form = TrustedDeviceForm(request.POST or None, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.device_create(request=request, data=data),
        done=lambda device: f"Device '{device.name}' added.",
        list_url="devices:device_list", title="Add a trusted device",
        intro="A machine or phone you sign in to your broker from. Validate it at the broker before you need it.",
        button="Add device",
    )


@sensitive_post_parameters()
def device_edit(request: HttpRequest, pk: int) -> HttpResponse:
    device = _owned(TrustedDevice, request, pk)
    name = device.name
    form = TrustedDeviceForm(request.POST or None, instance=device, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.device_update(request=request, device=device, data=data),
        done=lambda _: f"Device '{device.name}' saved.",
        list_url="devices:device_list", title=f"Edit “{name}”",
        status_actions=_status_actions(device),
    )


def _status_actions(device: TrustedDevice) -> tuple[tuple[str, str], ...]:
    """The status changes the edit page offers: each is its own confirmed action."""
    if device.status == TrustedDevice.Status.LOST:
        return (
            ("Mark found", reverse("devices:device_mark_found", args=[device.pk])),
            ("Mark revoked", reverse("devices:device_mark_revoked", args=[device.pk])),
        )
    if device.status == TrustedDevice.Status.ACTIVE:
        return (("Report lost…", reverse("devices:device_report_lost", args=[device.pk])),)
    return ()


def device_delete(request: HttpRequest, pk: int) -> HttpResponse:
    device = _owned(TrustedDevice, request, pk)
    return _action_page(
        request, run=lambda: services.device_delete(request=request, device=device),
        title=f"Delete “{device.name}”",
        body="The device leaves your inventory. If you lost it, report it lost instead, so that your readiness shows it until it is revoked at the broker.",
        button="Delete device", done=f"Device '{device.name}' deleted.", list_url="devices:device_list", danger=True,
    )


def device_report_lost(request: HttpRequest, pk: int) -> HttpResponse:
    device = _owned(TrustedDevice, request, pk)
    return _action_page(
        request, run=lambda: services.device_report_lost(request=request, device=device),
        title=f"Report “{device.name}” lost",
        body="Your readiness shows it as lost until you mark it revoked, or found. What to do at your broker now:",
        steps=LOST_DEVICE_STEPS,
        button="Yes, report it lost",
        done=f"'{device.name}' is marked lost. Revoke it at your broker now, then mark it revoked here.",
        done_level=messages.WARNING, list_url="devices:device_list", danger=True, always_confirm=True,
    )


# What a trader does at the broker when a device is gone (IBKR's Secure Login System).
LOST_DEVICE_STEPS = (
    "From another trusted device, sign in to Client Portal and open Settings, Secure Login System.",
    "Remove the lost device from the broker's trusted devices, so it can no longer approve a login.",
    "If the device was unlocked or its screen lock is weak, change your broker password now.",
    "If it held your authenticator (IB Key), set the second factor up again on the device you use now.",
)


def device_mark_found(request: HttpRequest, pk: int) -> HttpResponse:
    device = _owned(TrustedDevice, request, pk)
    return _action_page(
        request, run=lambda: services.device_mark_found(request=request, device=device),
        title=f"“{device.name}” found",
        body="It becomes an active device again, to be validated at the broker before you rely on it: its last validation is cleared.",
        button="Mark found", done=f"'{device.name}' is active again. Validate it at your broker, then mark it validated.",
        list_url="devices:device_list",
    )


def device_mark_revoked(request: HttpRequest, pk: int) -> HttpResponse:
    device = _owned(TrustedDevice, request, pk)
    return _action_page(
        request, run=lambda: services.device_mark_revoked(request=request, device=device),
        title=f"Mark “{device.name}” revoked",
        body="Do this once the broker no longer accepts the device.",
        button="Mark revoked", done=f"'{device.name}' is marked revoked.", list_url="devices:device_list",
    )


def device_mark_validated(request: HttpRequest, pk: int) -> HttpResponse:
    device = _owned(TrustedDevice, request, pk)
    return _action_page(
        request, run=lambda: services.device_mark_validated(request=request, device=device),
        title=f"“{device.name}” validated today",
        body="Records that the broker accepted this device today; it counts as an active, trusted device again.",
        button="Mark validated today", done=f"'{device.name}' validated today.", list_url="devices:device_list",
    )


# --- Recovery methods -------------------------------------------------------


def recovery_list(request: HttpRequest) -> HttpResponse:
    methods = sorted(RecoveryMethod.objects.for_owner(request.user), key=RecoveryMethod.sort_key)
    return _list_page(request, "devices/recovery_list.html", "recovery_methods", methods)


@sensitive_post_parameters()
def recovery_add(request: HttpRequest) -> HttpResponse:
    form = RecoveryMethodForm(request.POST or None, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.recovery_create(request=request, data=data),
        done=lambda method: f"Recovery method '{method.masked_label}' added.",
        list_url="devices:recovery_list", title="Add a recovery method",
        intro="How you get back in when a device is lost: your phone, a backup e-mail, and a backup factor.",
        button="Add method",
    )


@sensitive_post_parameters()
def recovery_edit(request: HttpRequest, pk: int) -> HttpResponse:
    method = _owned(RecoveryMethod, request, pk)
    # The owner's own edit form is the one place the label shows unmasked.
    form = RecoveryMethodForm(request.POST or None, instance=method, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.recovery_update(request=request, method=method, data=data),
        done=lambda _: f"Recovery method '{method.masked_label}' saved.",
        list_url="devices:recovery_list", title="Edit recovery method",
    )


def recovery_delete(request: HttpRequest, pk: int) -> HttpResponse:
    method = _owned(RecoveryMethod, request, pk)
    return _action_page(
        request, run=lambda: services.recovery_delete(request=request, method=method),
        title=f"Delete “{method.masked_label}”",
        body="The method leaves your inventory. Delete it only once it is also removed at the broker.",
        button="Delete method", done=f"Recovery method '{method.masked_label}' deleted.", list_url="devices:recovery_list", danger=True,
    )


def recovery_mark_verified(request: HttpRequest, pk: int) -> HttpResponse:
    method = _owned(RecoveryMethod, request, pk)
    return _action_page(
        request, run=lambda: services.recovery_mark_verified(request=request, method=method),
        title=f"“{method.masked_label}” verified today",
        body="Records that you checked today that this method still reaches you.",
        button="Mark verified today", done=f"'{method.masked_label}' verified today.", list_url="devices:recovery_list",
    )


# --- API keys ---------------------------------------------------------------


def key_list(request: HttpRequest) -> HttpResponse:
    keys = sorted(ApiKey.objects.for_owner(request.user).prefetch_related("automations"), key=ApiKey.sort_key)
    return _list_page(request, "devices/key_list.html", "api_keys", keys)


@sensitive_post_parameters()
def key_add(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.key_create(request=request, data=data),
        done=lambda key: f"API key '{key.label}' added.",
        list_url="devices:key_list", title="Add an API key",
        intro="Describe the key: its scopes, dates and last 4 characters. Never paste the key or its secret.",
        button="Add key",
    )


@sensitive_post_parameters()
def key_edit(request: HttpRequest, pk: int) -> HttpResponse:
    # Step-up protected as a whole because it edits the key's scopes.
    key = _owned(ApiKey, request, pk)
    label = key.label
    form = ApiKeyForm(request.POST or None, instance=key, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.key_update(request=request, key=key, data=data),
        done=lambda _: f"API key '{key.label}' saved.",
        list_url="devices:key_list", title=f"Edit “{label}”",
    )


def key_delete(request: HttpRequest, pk: int) -> HttpResponse:
    key = _owned(ApiKey, request, pk)
    if request.method == "POST":
        try:
            services.key_delete(request=request, key=key)
        except services.InUse as in_use:
            messages.error(request, f"'{key.label}' is used by {', '.join(in_use.users)}. Point them at another key (or delete them) first.")
            return redirect("devices:key_list")
        messages.success(request, f"API key '{key.label}' deleted.")
        return redirect("devices:key_list")
    return _action_page(
        request, run=lambda: None, title=f"Delete “{key.label}”",
        body="The key record leaves your inventory. To stop a key working, revoke it at the broker and mark it revoked instead.",
        button="Delete key", done="", list_url="devices:key_list", danger=True,
    )


def key_mark_rotated(request: HttpRequest, pk: int) -> HttpResponse:
    key = _owned(ApiKey, request, pk)
    return _action_page(
        request, run=lambda: services.key_mark_rotated(request=request, key=key),
        title=f"“{key.label}” rotated today",
        body="Records that you replaced this key's secret at the broker today. Update its last 4 characters and expiry if they changed.",
        button="Mark rotated today", done=f"'{key.label}' rotated today.", list_url="devices:key_list",
    )


def key_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = _owned(ApiKey, request, pk)
    return _action_page(
        request, run=lambda: services.key_revoke(request=request, key=key),
        title=f"Revoke “{key.label}”",
        body="Records that the key no longer works. Revoke it at the broker too; automations using it stop.",
        button="Mark revoked", done=f"'{key.label}' is marked revoked. Make sure it is revoked at the broker too.",
        list_url="devices:key_list", danger=True,
    )


# --- Automations ------------------------------------------------------------


def automation_list(request: HttpRequest) -> HttpResponse:
    automations = sorted(
        Automation.objects.for_owner(request.user).select_related("api_key", "heartbeat").prefetch_related("heartbeat__signals"),
        key=Automation.sort_key,
    )
    now = timezone.now()
    beats = {a.pk: heartbeat_view(a, now) for a in automations}
    key = PingKey.objects.filter(owner=request.user).first()
    return _list_page(request, "devices/automation_list.html", "automations", automations, beats=beats, ping_key=key)


@sensitive_post_parameters()
def automation_add(request: HttpRequest) -> HttpResponse:
    form = AutomationForm(request.POST or None, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.automation_create(request=request, data=data),
        done=lambda automation: f"Automation '{automation.name}' added.",
        list_url="devices:automation_list", title="Add an automation",
        intro="A strategy or bot that trades on its own. Give it its own key, token refresh, and a plan for failed logins.",
        button="Add automation",
    )


@sensitive_post_parameters()
def automation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    name = automation.name
    form = AutomationForm(request.POST or None, instance=automation, owner=request.user)
    return _form_page(
        request, form,
        save=lambda data: services.automation_update(request=request, automation=automation, data=data),
        done=lambda _: f"Automation '{automation.name}' saved.",
        list_url="devices:automation_list", title=f"Edit “{name}”",
    )


def automation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    return _action_page(
        request, run=lambda: services.automation_delete(request=request, automation=automation),
        title=f"Delete “{automation.name}”", body="The automation leaves your inventory. Pause it instead if it only stopped for a while.",
        button="Delete automation", done=f"Automation '{automation.name}' deleted.", list_url="devices:automation_list", danger=True,
    )


def automation_pause(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    return _action_page(
        request, run=lambda: services.automation_pause(request=request, automation=automation),
        title=f"Pause “{automation.name}”", body="A paused automation is left out of your readiness score.",
        button="Pause", done=f"'{automation.name}' paused.", list_url="devices:automation_list",
    )


def automation_resume(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    return _action_page(
        request, run=lambda: services.automation_resume(request=request, automation=automation),
        title=f"Resume “{automation.name}”", body="It counts in your readiness score again.",
        button="Resume", done=f"'{automation.name}' resumed.", list_url="devices:automation_list",
    )


# --- Heartbeats -----------------------------------------------------------------

def _ping_urls(request: HttpRequest, token: str) -> tuple[str, str]:
    return (
        request.build_absolute_uri(reverse("devices:ping", args=[token])),
        request.build_absolute_uri(reverse("devices:ping_fail", args=[token])),
    )


@sensitive_post_parameters()
def automation_heartbeat(request: HttpRequest, pk: int) -> HttpResponse:
    """Set up or change a bot's heartbeat; a new one's ping address is shown once, after a redirect."""
    automation = _owned(Automation, request, pk)
    beat = Heartbeat.objects.filter(automation=automation).first()
    catalog = broker_of(request.user)
    fields = ("period_minutes", "grace_minutes", *Heartbeat.SCHEDULE_FIELDS)
    initial = {name: getattr(beat, name) for name in fields} if beat else {"period_minutes": catalog.heartbeat_minutes or 5}
    form = HeartbeatForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {"period_minutes": form.cleaned_data["period_minutes"], "grace_minutes": form.cleaned_data["grace_minutes"], **form.schedule_data()}
        beat, token = services.heartbeat_save(request=request, automation=automation, data=data)
        if token:
            return once.show_once(request, "ping_token", {"automation": automation.pk, "token": token}, "devices:automation_heartbeat_token", automation.pk)
        messages.success(request, f"Heartbeat of '{automation.name}' saved.")
        return redirect("devices:automation_list")
    shown = beat if beat is not None and not form.is_bound else None
    upcoming = schedules.next_checkins(shown.schedule, shown.period_minutes, timezone.now()) if shown else []
    context = {"form": form, "automation": automation, "beat": beat, "catalog": catalog, "upcoming": upcoming,
               "schedule": shown.schedule.describe() if shown else ""}
    return render(request, "devices/heartbeat_form.html", context)


@never_cache
def automation_heartbeat_token(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    shown = once.take(request, "ping_token")
    token = shown["token"] if shown and shown.get("automation") == automation.pk else None
    # Two "new address" clicks at once each make an address and only the last
    # one stored works: a click that lost says so instead of showing a dead address.
    superseded = token is not None and not services.heartbeat_token_works(automation=automation, token=token)
    urls = _ping_urls(request, token) if token and not superseded else None
    response = render(request, "devices/heartbeat_token.html", {"automation": automation, "urls": urls, "superseded": superseded})
    return once.forget(request, response, "ping_token") if urls else response


def automation_heartbeat_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    beat = get_object_or_404(Heartbeat.objects.for_owner(request.user), automation=automation)
    if request.method != "POST":
        context = {
            "title": f"New ping address for “{automation.name}”",
            "body": "The current address stops working at once: update the bot with the new one.",
            "button": "Make a new address", "danger": True, "cancel_url": reverse("devices:automation_list"),
        }
        return render(request, "devices/confirm.html", context)
    token = services.heartbeat_rotate(request=request, heartbeat=beat)
    return once.show_once(request, "ping_token", {"automation": automation.pk, "token": token}, "devices:automation_heartbeat_token", automation.pk)


def automation_heartbeat_delete(request: HttpRequest, pk: int) -> HttpResponse:
    automation = _owned(Automation, request, pk)
    beat = get_object_or_404(Heartbeat.objects.for_owner(request.user), automation=automation)
    return _action_page(
        request, run=lambda: services.heartbeat_delete(request=request, heartbeat=beat),
        title=f"Remove the heartbeat of “{automation.name}”", body="Gatecheck stops watching its check-ins; its ping address stops working.",
        button="Remove heartbeat", done=f"Heartbeat of '{automation.name}' removed.", list_url="devices:automation_list", danger=True,
    )


def ping_key_rotate(request: HttpRequest) -> HttpResponse:
    """Make (or replace) the trader's ping key, behind step-up; shown once on the next page."""
    if request.method != "POST":
        return render(request, "accounts/confirm.html", {
            "title": "New ping key",
            "body": "One key lets each of your bots ping by its slug. A new key replaces the old one: bots that use the old key stop reaching Gatecheck.",
            "button": "Make a new ping key",
        })
    key = services.ping_key_rotate(request=request, owner=request.user)
    return once.show_once(request, "ping_key", {"key": key}, "devices:ping_key_shown")


@never_cache
def ping_key_shown(request: HttpRequest) -> HttpResponse:
    shown = once.take(request, "ping_key")
    key = shown["key"] if shown else None
    base = request.build_absolute_uri(reverse("devices:ping", args=["KEY"])).removesuffix("KEY")
    bots = [(a.name, ping_slug(a.name)) for a in Automation.objects.for_owner(request.user).filter(heartbeat__isnull=False).order_by("name")]
    response = render(request, "devices/ping_key.html", {"key": key, "base": base, "bots": bots})
    return once.forget(request, response, "ping_key") if key else response


@public
@never_cache
@sensitive_post_parameters()
def incident_ack(request: HttpRequest, token: str) -> HttpResponse:
    """An "I'm on it" link (devices.incidents): GET asks, POST acknowledges,
    so a mail scanner that follows links acknowledges nothing. The link is
    the credential: good once, for 24 hours, for its incident only."""
    try:
        link = incidents.link_incident(token)
    except incidents.LinkInvalid:
        return render(request, "devices/incident_ack.html", {"invalid": True}, status=404)
    incident = link.incident
    if request.method == "POST":
        incidents.acknowledge(incident=incident, by=link.recipient, request=request, via="link")
        return render(request, "devices/incident_ack.html", {"incident": incident, "done": True, "who": link.recipient})
    return render(request, "devices/incident_ack.html", {"incident": incident, "who": link.recipient})


# The last part of a ping URL and the signal it sends (INVENTORY.md "Ping protocol v2").
PING_SUFFIXES = {"": "success", "start": "start", "fail": "failure", "log": "log"}


def _ping_answer(text: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain")
    # Any page may ping (a browser job, a status widget): the answer says nothing but OK or not.
    response["Access-Control-Allow-Origin"] = "*"
    response["Ping-Body-Limit"] = str(HeartbeatSignal.BODY_LIMIT)
    return response


class _BadPing(ValueError):
    pass


def _signal_of(suffix: str) -> tuple[str, int | None] | None:
    """(kind, exit status) of a URL's last part; None when it names no signal (it is a slug)."""
    if suffix in PING_SUFFIXES:
        return PING_SUFFIXES[suffix], None
    if suffix.isascii() and suffix.isdigit() and len(suffix) <= 3:
        status = int(suffix)
        if status > 255:
            raise _BadPing("Invalid exit status: 0 to 255")
        return ("success" if status == 0 else "failure"), status
    return None


@public
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping_any(request: HttpRequest, path: str) -> HttpResponse:
    """Every ping URL: ``<token>[/<signal>]`` or ``<ping key>/<slug>[/<signal>]``,
    a trailing slash allowed, ``?rid=<uuid>``, a POST body kept as the message.
    No session, cookie or CSRF token; the same answers and headers as healthchecks.io."""
    parts = path.split("/")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    try:
        rid = uuid.UUID(request.GET["rid"]) if "rid" in request.GET else None
    except ValueError:
        return _ping_answer("Invalid rid: a UUID", 400)
    message = request.read(HeartbeatSignal.BODY_LIMIT).decode("utf-8", "replace") if request.method == "POST" else ""
    record = {"source_ip": client_ip(request), "message": message, "rid": rid}
    try:
        if len(parts) == 1 or (len(parts) == 2 and _signal_of(parts[1]) is not None):
            kind, exit_status = _signal_of(parts[1] if len(parts) == 2 else "")
            beat = services.heartbeat_ping(token=parts[0], kind=kind, exit_status=exit_status, **record)
            if beat is not None or len(parts) == 1:
                return _ping_answer("OK") if beat is not None else _ping_answer("Not found", 404)
        if len(parts) in (2, 3):
            signal = _signal_of(parts[2]) if len(parts) == 3 else ("success", None)
            beat_id = services.slug_heartbeat(key=parts[0], slug=parts[1]) if signal else None
            if beat_id is not None and services.heartbeat_ping(heartbeat_id=beat_id, kind=signal[0], exit_status=signal[1], **record):
                return _ping_answer("OK")
    except _BadPing as bad:
        return _ping_answer(str(bad), 400)
    except services.SlugAmbiguous:
        return _ping_answer("Ambiguous slug: two bots share it; rename one", 409)
    except services.PingRefused:
        return _ping_answer("Too many pings", 429)
    return _ping_answer("Not found", 404)


@public
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping(request: HttpRequest, token: str) -> HttpResponse:
    """A bot's check-in after a successful token refresh or keep-alive (the address heartbeat_url prints)."""
    return ping_any(request, token)


@public
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping_fail(request: HttpRequest, token: str) -> HttpResponse:
    """A bot saying its authentication failed and it ran its fail-safe."""
    return ping_any(request, f"{token}/fail")


def heartbeat_view(automation: Automation, now) -> dict | None:
    """What the automations page shows of a bot's heartbeat: status, last check-in, last signals."""
    beat = getattr(automation, "heartbeat", None)
    if beat is None:
        return None
    status = beat.status_at(now)
    history = list(beat.signals.all())
    return {"beat": beat, "status": status, "tag": HEARTBEAT_TAGS[status], "label": HEARTBEAT_STATUSES[status],
            "ago": (now - beat.last_at) if beat.last_at else None, "signals": history[:5], "slug": ping_slug(automation.name),
            "runs": run_durations((s.kind, s.at, s.rid) for s in history)[:3]}
