"""The trader's dashboard and readiness inputs.

Every view needs an MFA-verified session (accounts.middleware); the only
``@public`` view is the calendar feed, which its random token authorises
for that feed alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

from django.contrib import messages
from django.db import IntegrityError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST, require_safe

from accounts import once
from accounts.audit import record_read
from accounts.decorators import public
from accounts.views import email_banner_shown
from devices import selectors as devices_selectors
from devices import services as devices_services
from devices.forms import AcceptRiskForm, DrillStartForm, InventoryUploadForm, PermissionForm, ProfileForm, SubscriptionForm
from devices.inventory import FORMAT as INVENTORY_FORMAT
from devices.inventory import (
    MAX_IMPORT_BYTES,
    SECTION_TITLES,
    SECTIONS,
    InventoryInvalid,
    Problem,
    current_counts,
    dumps,
    export_inventory,
    load,
    parse,
    preview,
    replace_inventory,
)
from devices.models import AcceptedRisk, Drill, Permission, Subscription, TrustedDevice
from readiness import rules
from readiness import vocabulary as words
from readiness.brokers import catalog_for
from readiness.recovery import duration_text, reentry_steps

from . import charts, selectors, services
from .ical import feed_ical, quiet_windows
from .models import CalendarFeed


@dataclass(frozen=True)
class Card:
    """One rule on the dashboard, with what the template needs around it."""

    result: rules.RuleResult
    href: str
    accepted_reason: str

    # Worked out once here rather than by filters in the template: nine
    # cards of filters were a third of the page's rendering time.
    @cached_property
    def slug(self) -> str:
        return slugify(self.result.id)

    @cached_property
    def status(self) -> tuple[str, str]:
        """The status tag: its glyph and its word."""
        return words.STATUS_GLYPHS.get(self.result.status, ""), words.STATUS_LABELS.get(self.result.status, self.result.status)

    @cached_property
    def points_text(self) -> str:
        r = self.result
        return f"Not scored · weight {r.weight}" if r.status == rules.NA else f"{r.points:g} of {r.weight} points"

    @property
    def to_fix(self) -> bool:
        return self.result.status in (rules.FAIL, rules.PARTIAL)

    @property
    def first_findings(self) -> tuple:
        return self.result.findings[:CARD_FINDINGS]

    @property
    def more_findings(self) -> tuple:
        """Shown folded, after "and N more"."""
        return self.result.findings[CARD_FINDINGS:]

    @property
    def open_risk(self) -> bool:
        """Failing or partial and not accepted: the card offers to accept it
        (on its own page, which says what accepting means)."""
        return self.to_fix and self.result.accepted_until is None


# Findings shown on a dashboard card before "and N more".
CARD_FINDINGS = 3


def _cards(report: rules.Report, inventory: rules.Inventory, today: date) -> list[Card]:
    reasons = {r.rule: r.reason for r in inventory.accepted_risks if rules.risk_holds(r.until, today)}
    cards = []
    for result in report.results:
        cards.append(
            Card(
                result=result,
                href=reverse(result.fix_url),
                accepted_reason=reasons.get(result.id, "") if result.accepted_until else "",
            )
        )
    return cards


def _due_groups(items, today: date) -> list[tuple[str, str, list[dict]]]:
    """Coming-due, told apart: never done, overdue, and coming up in N days."""
    groups: dict[str, list[dict]] = {"never": [], "overdue": [], "soon": []}
    for item in items:
        entry = {
            "item": item, "href": reverse(item.fix_url), "days": (item.due_on - today).days, "late": (today - item.due_on).days,
            "soon": rules.due_soon(item.due_on, today),
        }
        groups["never" if item.never else "overdue" if item.overdue(today) else "soon"].append(entry)
    titles = {"never": "Never done", "overdue": "Overdue", "soon": "Coming up"}
    return [(key, titles[key], entries) for key, entries in groups.items() if entries]


@never_cache
def dashboard(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    data = selectors.dashboard_for(request.user, today)
    # Today's snapshot is kept when the score shown differs from the stored one.
    services.snapshot_keep(user=request.user, report=data.report, stored=data.stored_today, inventory=data.inventory)
    report = data.report
    # Someone who is both trader and lead sees their desks here too.
    led = list(request.user.led_desks.annotate(traders=Count("members")).order_by("name"))
    request.gatecheck_desk_lead = bool(led)
    context = {
        "email_banner": email_banner_shown(request),
        "led_desks": led,
        "today": today,
        "report": report,
        "empty": data.inventory.is_empty,
        "ring": charts.Ring(score=report.score, level=report.level),
        "week_ago": data.week_ago,
        "week_change": data.week_change,
        "actions": [(r, reverse(r.fix_url)) for r in report.next_actions[:3]],
        "cards": _cards(report, data.inventory, today),
        "due": [
            {"item": item, "href": reverse(item.fix_url), "days": (item.due_on - today).days, "late": (today - item.due_on).days}
            for item in data.due
        ],
        "due_groups": _due_groups(data.due, today),
        "next_due": data.next_due,
        "points_to_ready": rules.points_to_ready(report.score),
        "start_done": {
            "devices": bool(data.inventory.devices),
            "recovery": bool(data.inventory.recovery_methods),
            "profile": data.inventory.profile.broker_mfa is not None and bool(data.inventory.profile.regions_traded),
        },
        "chart": charts.history_chart(list(data.history), today),
        "start_links": {
            "devices": reverse("devices:device_add"),
            "recovery": reverse("devices:recovery_add"),
            "profile": reverse("checklist:profile"),
        },
    }
    return render(request, "checklist/dashboard.html", context)


# --------------------------------------------------------------------------
# Profile and calendar feed
# --------------------------------------------------------------------------


@never_cache
@sensitive_post_parameters()
def profile(request: HttpRequest) -> HttpResponse:
    current = devices_selectors.profile_for(request.user)
    form = ProfileForm.for_profile(current, request.POST or None)
    if request.method == "POST" and form.is_valid():
        changes = devices_services.profile_update(request=request, profile=current, data=form.cleaned_data)
        messages.success(request, "Profile saved." if changes else "Nothing changed.")
        if "broker" in changes:
            # Say which records no longer fit the new broker, rather than keep them silently.
            for name, points in devices_selectors.devices_unfit(request.user, form.catalog):
                messages.warning(
                    request,
                    f"Device '{name}' uses {', '.join(points)}, which {form.catalog.name} does not offer: edit its access points.",
                )
        return redirect("checklist:profile")
    feed = CalendarFeed.objects.filter(owner=request.user).first()
    findings = devices_selectors.findings_for(request.user, "profile", timezone.localdate()).get(None, ())
    return render(request, "checklist/profile.html", {"form": form, "feed": feed, "missing": findings})


@never_cache
def calendar_rotate(request: HttpRequest) -> HttpResponse:
    """A new secret feed URL; the old one stops working. Shown once, never stored."""
    has_feed = CalendarFeed.objects.filter(owner=request.user).exists()
    if request.method != "POST":
        return render(request, "checklist/calendar_confirm.html", {"has_feed": has_feed})
    token = services.calendar_feed_rotate(request=request, owner=request.user)
    # POST, redirect, GET: the page after the redirect shows the address once,
    # and a reload shows it no more (it never makes a new one).
    return once.show_once(request, "calendar_token", token, "checklist:calendar_token")


@never_cache
def calendar_token(request: HttpRequest) -> HttpResponse:
    token = once.take(request, "calendar_token")
    if token is None:
        return render(request, "checklist/calendar_token.html", {"url": None})
    url = request.build_absolute_uri(f"{reverse('checklist:calendar_feed')}?{urlencode({'token': token})}")
    response = render(request, "checklist/calendar_token.html", {"url": url, "webcal": "webcal://" + url.split("://", 1)[1]})
    return once.forget(request, response, "calendar_token")


@require_POST
def calendar_revoke(request: HttpRequest) -> HttpResponse:
    if services.calendar_feed_revoke(request=request, owner=request.user):
        messages.success(request, "Calendar feed turned off. Calendars subscribed to it stop updating.")
    return redirect("checklist:profile")


CALENDAR_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,100}")


@public
@require_safe
def calendar_feed(request: HttpRequest) -> HttpResponse:
    """The due-date feed at /calendar.ics?token=... The token is the only
    credential and opens this feed only."""
    token = request.GET.get("token", "")
    if not CALENDAR_TOKEN.fullmatch(token):
        raise Http404
    feed = CalendarFeed.objects.select_related("owner").filter(token=CalendarFeed.digest(token), owner__is_active=True).first()
    if feed is None:
        raise Http404
    inventory = devices_selectors.inventory_for(feed.owner)
    today = timezone.localdate()
    profile = devices_selectors.profile_for(feed.owner)
    body = feed_ical(
        rules.upcoming_dates(inventory, today, devices_selectors.limits()),
        owner_id=feed.owner.pk,
        link=lambda name: request.build_absolute_uri(reverse(name)),
        quiet=quiet_windows(
            catalog_for(profile.broker), owner_id=feed.owner.pk, restart_at=profile.platform_restart_at, restart_tz=profile.platform_restart_tz
        ),
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="gatecheck.ics"'
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


# --------------------------------------------------------------------------
# Market data
# --------------------------------------------------------------------------


def subscription_list(request: HttpRequest) -> HttpResponse:
    subscriptions = list(Subscription.objects.for_owner(request.user))
    regions = devices_selectors.profile_for(request.user).regions_traded or []
    # The gaps are the findings of marketdata.covered, each about a region.
    gaps = devices_selectors.findings_for(request.user, "subscriptions", timezone.localdate()).get(None, ())
    return render(request, "checklist/subscription_list.html", {"subscriptions": subscriptions, "regions": regions, "gaps": gaps})


@sensitive_post_parameters()
def subscription_add(request: HttpRequest) -> HttpResponse:
    initial = {"region": request.GET.get("region", ""), "active": True}
    form = SubscriptionForm(request.POST or None, owner=request.user, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            devices_services.subscription_create(request=request, owner=request.user, **form.cleaned_data)
        except IntegrityError:
            # A parallel request added the same feed after the form checked it.
            form.add_duplicate_error()
        else:
            messages.success(request, f"Feed '{form.cleaned_data['feed']}' added.")
            return redirect("checklist:subscription_list")
    return render(request, "checklist/subscription_form.html", {"form": form})


@sensitive_post_parameters()
def subscription_edit(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(Subscription.objects.for_owner(request.user), pk=pk)
    form = SubscriptionForm(request.POST or None, owner=request.user, instance=subscription)
    if request.method == "POST" and form.is_valid():
        try:
            devices_services.subscription_update(request=request, subscription=subscription, data=form.cleaned_data)
        except IntegrityError:
            form.add_duplicate_error()
        else:
            messages.success(request, f"Feed '{subscription.feed}' saved.")
            return redirect("checklist:subscription_list")
    return render(request, "checklist/subscription_form.html", {"form": form, "subscription": subscription})


def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(Subscription.objects.for_owner(request.user), pk=pk)
    if request.method != "POST":
        return render(
            request,
            "accounts/confirm.html",
            {
                "title": f"Delete feed '{subscription.feed}'",
                "body": f"Your {subscription.region} market data will no longer count as covered.",
                "button": "Delete feed",
                "danger": True,
                "cancel_url": reverse("checklist:subscription_list"),
            },
        )
    devices_services.subscription_delete(request=request, subscription=subscription)
    messages.success(request, f"Feed '{subscription.feed}' deleted.")
    return redirect("checklist:subscription_list")


# --------------------------------------------------------------------------
# Drills
# --------------------------------------------------------------------------


def drill_list(request: HttpRequest) -> HttpResponse:
    lim = devices_selectors.limits()
    drills = list(Drill.objects.for_owner(request.user))
    done = [d for d in drills if d.completed and not d.too_fast][:10][::-1]
    trend = charts.drill_trend(
        [(d.finished_at.date(), d.reentry.total_seconds() / 60) for d in done], lim.drill_target_minutes
    )
    last, previous = (done[-1], done[-2]) if len(done) >= 2 else (done[-1] if done else None, None)
    context = {
        "form": DrillStartForm(owner=request.user),
        "has_devices": TrustedDevice.objects.for_owner(request.user).filter(status=TrustedDevice.Status.ACTIVE).exists(),
        "running": next((d for d in drills if d.is_running), None),
        "drills": drills,
        "trend": trend if done else None,
        "last": last,
        "faster_by": (previous.reentry - last.reentry) if previous else None,
        "target": timedelta(minutes=lim.drill_target_minutes),
        "devices_href": reverse("devices:device_list"),
        "missing": devices_selectors.findings_for(request.user, "drills", timezone.localdate()).get(None, ()),
    }
    return render(request, "checklist/drill_list.html", context)


@require_POST
def drill_start(request: HttpRequest) -> HttpResponse:
    form = DrillStartForm(request.POST, owner=request.user)
    if not form.is_valid():
        messages.error(request, "Choose one of your active devices as the lost one.")
        return redirect("checklist:drill_list")
    drill = devices_services.drill_start(request=request, owner=request.user, lost_device=form.cleaned_data["lost_device"].name)
    return redirect("checklist:drill_detail", pk=drill.pk)


@never_cache
def drill_detail(request: HttpRequest, pk: int) -> HttpResponse:
    drill = get_object_or_404(Drill.objects.for_owner(request.user), pk=pk)
    lim = devices_selectors.limits()
    steps = list(drill.steps.all())
    next_step = next((s for s in steps if s.confirmed_at is None), None)
    now = timezone.now()
    target = timedelta(minutes=lim.drill_target_minutes)
    context = {
        "drill": drill,
        "steps": steps,
        "next_step": next_step,
        "target": target,
        # The clock script counts from these server times, not the browser's.
        "elapsed": now - drill.started_at,
        "started_ms": int(drill.started_at.timestamp() * 1000),
        "now_ms": int(now.timestamp() * 1000),
        "target_ms": int(target.total_seconds() * 1000),
    }
    return render(request, "checklist/drill_detail.html", context)


@require_POST
def drill_step(request: HttpRequest, pk: int) -> HttpResponse:
    """Confirm the next step; the server keeps the time."""
    drill = get_object_or_404(Drill.objects.for_owner(request.user), pk=pk)
    try:
        position = int(request.POST.get("position", ""))
    except ValueError:
        position = -1
    if devices_services.drill_step_confirm(request=request, drill=drill, position=position) is None and drill.is_running:
        messages.error(request, "Confirm the steps in order: that one is not the next.")
    return redirect("checklist:drill_detail", pk=drill.pk)


@require_POST
def drill_finish(request: HttpRequest, pk: int) -> HttpResponse:
    drill = get_object_or_404(Drill.objects.for_owner(request.user), pk=pk)
    if drill.is_running:
        try:
            drill = devices_services.drill_finish(request=request, drill=drill)
        except devices_services.StepsPending:
            messages.error(request, "Confirm every step first: “I’m back in” counts only once you have done each one.")
            return redirect("checklist:drill_detail", pk=drill.pk)
        messages.success(request, f"Back in after {duration_text(drill.reentry)}.")
    return redirect("checklist:drill_detail", pk=drill.pk)


@require_POST
def drill_abandon(request: HttpRequest, pk: int) -> HttpResponse:
    drill = get_object_or_404(Drill.objects.for_owner(request.user), pk=pk)
    if drill.is_running:
        devices_services.drill_abandon(request=request, drill=drill)
        messages.info(request, "Drill abandoned. It does not count towards your score.")
    return redirect("checklist:drill_list")


# --------------------------------------------------------------------------
# Trading permissions (the third gate)
# --------------------------------------------------------------------------


def permission_list(request: HttpRequest) -> HttpResponse:
    permissions = sorted(Permission.objects.for_owner(request.user), key=Permission.sort_key)
    findings = devices_selectors.findings_for(request.user, "permissions", timezone.localdate())
    profile = devices_selectors.profile_for(request.user)
    context = {
        "rows": [(p, findings.get(p.pk, ())) for p in permissions],
        # Pairs traded with no permission row at all: one click from a pre-filled form.
        "gaps": [(gap, *str(gap.ref).split("/", 1)) for gap in findings.get(None, ())],
        "traded": bool(profile.products_traded and profile.regions_traded),
    }
    return render(request, "checklist/permission_list.html", context)


def _permission_form_page(request: HttpRequest, form: PermissionForm, *, title: str, button: str, done: str) -> HttpResponse:
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if form.instance.pk:
                devices_services.permission_update(request=request, permission=form.instance, data=data)
            else:
                devices_services.permission_create(request=request, owner=request.user, data=data)
        except IntegrityError:
            form.add_error("region", "You already have this permission; edit that one instead.")
        else:
            messages.success(request, done)
            return redirect("checklist:permission_list")
    return render(request, "checklist/permission_form.html", {"form": form, "title": title, "button": button})


@sensitive_post_parameters()
def permission_add(request: HttpRequest) -> HttpResponse:
    initial = {key: request.GET[key] for key in ("product", "region") if key in request.GET}
    form = PermissionForm(request.POST or None, owner=request.user, initial={"status": "not_requested", **initial})
    return _permission_form_page(request, form, title="Add a trading permission", button="Add permission", done="Permission added.")


@sensitive_post_parameters()
def permission_edit(request: HttpRequest, pk: int) -> HttpResponse:
    permission = get_object_or_404(Permission.objects.for_owner(request.user), pk=pk)
    form = PermissionForm(request.POST or None, owner=request.user, instance=Permission.objects.get(pk=permission.pk))
    return _permission_form_page(request, form, title=f"Edit “{permission}”", button="Save", done="Permission saved.")


def permission_delete(request: HttpRequest, pk: int) -> HttpResponse:
    permission = get_object_or_404(Permission.objects.for_owner(request.user), pk=pk)
    if request.method != "POST":
        return render(
            request,
            "accounts/confirm.html",
            {
                "title": f"Delete “{permission}”",
                "body": "It leaves your inventory; if you still trade this pair, the readiness rule shows it as missing.",
                "button": "Delete permission",
                "danger": True,
                "cancel_url": reverse("checklist:permission_list"),
            },
        )
    devices_services.permission_delete(request=request, permission=permission)
    messages.success(request, "Permission deleted.")
    return redirect("checklist:permission_list")


# --------------------------------------------------------------------------
# Accepted risks
# --------------------------------------------------------------------------


def risk_list(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    titles = {rule.id: rule.title for rule in rules.CATALOG}
    risks = [(risk, titles.get(risk.rule, risk.rule), rules.risk_holds(risk.until, today)) for risk in AcceptedRisk.objects.for_owner(request.user)]
    return render(request, "checklist/risk_list.html", {"risks": risks, "today": today})


@sensitive_post_parameters()
def risk_accept(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    form = AcceptRiskForm(request.POST or None, initial={"rule": request.GET.get("rule", "")}, today=today)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        devices_services.risk_accept(request=request, owner=request.user, rule=data["rule"], reason=data["reason"], until=data["until"])
        messages.success(request, f"Risk accepted until {data['until']:%Y-%m-%d}. It stays on your card and your desk lead sees it.")
        return redirect("checklist:dashboard")
    rule_id = form.data.get("rule") if form.is_bound else request.GET.get("rule")
    rule = next((r for r in rules.CATALOG if r.id == rule_id), None)
    if rule is None:
        raise Http404
    return render(request, "checklist/risk_accept.html", {"form": form, "rule": rule})


@require_POST
def risk_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    risk = get_object_or_404(AcceptedRisk.objects.for_owner(request.user), pk=pk)
    devices_services.risk_withdraw(request=request, risk=risk)
    messages.success(request, "Accepted risk withdrawn; the rule is back in your next actions.")
    return redirect("checklist:risk_list")


# --------------------------------------------------------------------------
# Recovery card
# --------------------------------------------------------------------------


@never_cache
def recovery_card(request: HttpRequest) -> HttpResponse:
    today = timezone.localdate()
    lim = devices_selectors.limits()
    inventory = devices_selectors.inventory_for(request.user)
    current = devices_selectors.profile_for(request.user)
    done = rules.completed_drills(inventory, today)
    qualifying = {d.name for d in rules.qualifying_devices(inventory, today, lim)}
    context = {
        "today": today,
        "profile": current,
        "devices": [(d, d.name in qualifying) for d in inventory.devices if d.status == rules.ACTIVE],
        "factors": inventory.recovery_methods,
        "steps": reentry_steps(inventory, today, lim, support_contact=current.support_contact),
        "last_drill": done[0] if done else None,
        "last_drill_time": rules.reentry_time(done[0]) if done else None,
    }
    return render(request, "checklist/recovery_card.html", context)


# --------------------------------------------------------------------------
# JSON API for the signed-in, MFA-verified trader's own account
# --------------------------------------------------------------------------


@require_safe
@never_cache
def api_readiness(request: HttpRequest) -> JsonResponse:
    """The ``readiness --json`` object of INVENTORY.md; ``?as_of=YYYY-MM-DD`` scores another day."""
    as_of = timezone.localdate()
    if "as_of" in request.GET:
        try:
            as_of = date.fromisoformat(request.GET["as_of"])
        except ValueError:
            return HttpResponseBadRequest('{"error": "as_of must be YYYY-MM-DD"}', content_type="application/json")
    report = devices_selectors.report_for(request.user, as_of)
    return JsonResponse(report.as_dict(request.user.get_username()))


@require_safe
@never_cache
def api_inventory(request: HttpRequest) -> JsonResponse:
    """The trader's whole inventory in the ``gatecheck.inventory/2`` format."""
    document = export_inventory(request.user)
    record_read(action="inventory.exported", request=request, details={"via": "api"})
    return JsonResponse(document)


PENDING_IMPORT = "devices.pending_import"


# --- Inventory file ---------------------------------------------------------


@require_GET
@never_cache
def inventory_export(request: HttpRequest) -> HttpResponse:
    document = export_inventory(request.user)
    record_read(action="inventory.exported", request=request, object_label="download")
    filename = f"gatecheck-inventory-{request.user.get_username()}-{timezone.localdate():%Y-%m-%d}.json"
    response = HttpResponse(dumps(document), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# Room for the multipart headers and the CSRF token around the file itself.
UPLOAD_OVERHEAD_BYTES = 16 * 1024


def _import_page(request: HttpRequest, form: InventoryUploadForm, refused: InventoryInvalid | None = None, status: int = 200) -> HttpResponse:
    context = {
        "form": form,
        "problems": refused.problems if refused else [],
        "more": refused.more if refused else 0,
        "total": refused.total if refused else 0,
        "sections": SECTION_TITLES,
        "format": INVENTORY_FORMAT,
    }
    return render(request, "checklist/inventory_import.html", context, status=status)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


@csrf_exempt  # CsrfViewMiddleware would read the whole body to find the token: csrf_protect below runs after the size check.
@sensitive_post_parameters()
@never_cache
def inventory_import(request: HttpRequest) -> HttpResponse:
    """Upload and check a file. A valid one waits in the (database-backed)
    session for the preview and confirm step; an invalid one is refused with
    every problem listed, and nothing changes.

    An upload larger than the limit is refused from its Content-Length,
    before a byte of it is read (or spooled to disk)."""
    length = _declared_length(request)
    if request.method == "POST" and (length is None or length > MAX_IMPORT_BYTES + UPLOAD_OVERHEAD_BYTES):
        too_large = InventoryInvalid([Problem("", f"is larger than {MAX_IMPORT_BYTES // 1024} KB; an inventory is much smaller")])
        return _import_page(request, InventoryUploadForm(), too_large, status=413)
    return _inventory_upload(request)


@csrf_protect
def _inventory_upload(request: HttpRequest) -> HttpResponse:
    form = InventoryUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        raw = form.cleaned_data["file"].read(MAX_IMPORT_BYTES + 1)
        try:
            load(raw)
        except InventoryInvalid as invalid:
            return _import_page(request, form, invalid)
        request.session[PENDING_IMPORT] = raw.decode("utf-8-sig")
        return redirect("checklist:inventory_import_confirm")
    return _import_page(request, form)


@never_cache
def inventory_import_confirm(request: HttpRequest) -> HttpResponse:
    """Preview (GET) and replace (POST, with a fresh second factor)."""
    text = request.session.get(PENDING_IMPORT)
    if text is None:
        messages.info(request, "Choose an inventory file to import first.")
        return redirect("checklist:inventory_import")
    if request.method == "POST" and request.POST.get("action") == "cancel":
        request.session.pop(PENDING_IMPORT, None)
        messages.info(request, "Import cancelled; nothing changed.")
        return redirect("checklist:inventory_import")
    try:
        # Checked again: the day may have changed since the upload (accepted risks).
        plan = load(text)
    except InventoryInvalid as invalid:
        request.session.pop(PENDING_IMPORT, None)
        return _import_page(request, InventoryUploadForm(), invalid)
    if request.method == "POST":
        if request.POST.get("digest") != _digest(text):
            # Another tab uploaded a different file since this preview was shown.
            messages.error(request, "The file waiting to be imported changed. Check this preview again.")
            return redirect("checklist:inventory_import_confirm")
        before = devices_selectors.report_for(request.user, timezone.localdate()).score
        replace_inventory(user=request.user, plan=plan, request=request, source="upload")
        request.session.pop(PENDING_IMPORT, None)
        after = devices_selectors.report_for(request.user, timezone.localdate())
        messages.success(
            request, f"Your inventory was replaced with the imported file. Your score: {before} before, {after.score} now ({words.LEVEL_LABELS[after.level]})."
        )
        return redirect("checklist:dashboard")
    current, new = current_counts(request.user), plan.counts()
    rows = [
        {"title": SECTION_TITLES[section.key], "key": section.key, "current": current[section.key], "new": new[section.key]}
        for section in SECTIONS
    ]
    changes = preview(
        request.user, parse(text), as_of=timezone.localdate(), limits=devices_selectors.limits(), before=devices_selectors.inventory_for(request.user)
    )
    return render(request, "checklist/inventory_confirm.html", {"rows": rows, "preview": changes, "digest": _digest(text)})
