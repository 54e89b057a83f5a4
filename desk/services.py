"""Writes with side effects for desk leads: reminders, digests, MFA resets,
exports, and the "Desk leads" group that lets leads into the admin panel."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.audit import record_event
from accounts.mail import mail_send
from accounts.models import Desk, User
from accounts.services import mfa_reset
from checklist.selectors import inventories_for, limits
from readiness import rules
from readiness import vocabulary as words
from readiness.masking import mask_text

from .models import ReminderLog
from .selectors import (
    DUE_SOON_DAYS,
    LEVEL_LABELS,
    RULE_IDS,
    DeskTable,
    can_reset_mfa,
    desk_rows,
    latest_snapshots,
)

logger = logging.getLogger("gatecheck.jobs")
LEAD_GROUP = "Desk leads"
# Leads may view these models in the admin, always scoped to their desks.
LEAD_VIEW_MODELS = (
    ("accounts", "user"),
    ("accounts", "desk"),
    ("accounts", "auditevent"),
    ("devices", "trusteddevice"),
    ("devices", "recoverymethod"),
    ("devices", "apikey"),
    ("devices", "automation"),
    ("checklist", "tradingprofile"),
    ("checklist", "subscription"),
    ("checklist", "drill"),
    ("checklist", "acceptedrisk"),
    ("checklist", "readinesssnapshot"),
    ("desk", "reminderlog"),
)
BATCH = 500


# --------------------------------------------------------------------------
# Admin access for leads
# --------------------------------------------------------------------------


def lead_group() -> Group:
    """The "Desk leads" group, with view-only permissions and nothing else."""
    group, _ = Group.objects.get_or_create(name=LEAD_GROUP)
    wanted = Q()
    for app_label, model in LEAD_VIEW_MODELS:
        wanted |= Q(content_type__app_label=app_label, codename=f"view_{model}")
    group.permissions.set(Permission.objects.filter(wanted))
    return group


def lead_access_sync(user: User) -> None:
    """Make a desk lead staff in the "Desk leads" group, and undo it when they
    lead no desk any more (unless someone gave them other admin rights)."""
    group = lead_group()
    if user.led_desks.exists():
        user.groups.add(group)
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
            record_event(action="desk.lead_access_granted", subject=user, object_label=user.username)
        return
    user.groups.remove(group)
    if user.is_staff and not user.is_superuser and not user.groups.exists() and not user.user_permissions.exists():
        user.is_staff = False
        user.save(update_fields=["is_staff"])
        record_event(action="desk.lead_access_revoked", subject=user, object_label=user.username)


def on_desk_leads_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """m2m_changed receiver for Desk.leads, from either side of the relation."""
    if action == "pre_clear" and not reverse:
        instance._leads_before_clear = list(instance.leads.all())
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:
        users = [instance]
    elif action == "post_clear":
        users = getattr(instance, "_leads_before_clear", [])
    else:
        users = list(User.objects.filter(pk__in=pk_set or ()))
    for user in users:
        lead_access_sync(user)


def on_desk_deleting(sender, instance: Desk, **kwargs) -> None:
    """pre_delete receiver: remember the leads, whose rows go with the desk."""
    instance._leads_before_delete = list(instance.leads.all())


def on_desk_deleted(sender, instance: Desk, **kwargs) -> None:
    """post_delete receiver: a lead of no desk any more loses the admin access."""
    for user in getattr(instance, "_leads_before_delete", []):
        lead_access_sync(user)


# --------------------------------------------------------------------------
# Sending e-mail once per person, kind and day
# --------------------------------------------------------------------------


class Sent(StrEnum):
    SENT = "sent"
    ALREADY = "already"
    NO_EMAIL = "no_email"
    NOTHING = "nothing"
    FAILED = "failed"


def _send_once(*, recipient: User, kind: str, day: date, message: EmailMultiAlternatives, items: int, sent_by: User | None = None) -> Sent:
    """Claim the (recipient, kind, day) row first, then send.

    Claiming first means two runs racing each other send one e-mail; if the
    send fails (logged by accounts.mail) the claim is dropped so that the
    next run, or the lead's next click, tries again.
    """
    try:
        with transaction.atomic():
            log = ReminderLog.objects.create(recipient=recipient, kind=kind, date=day, sent_by=sent_by, item_count=items)
    except IntegrityError:
        return Sent.ALREADY
    if not mail_send(message, kind=kind):
        log.delete()
        return Sent.FAILED
    return Sent.SENT


def _site_url(path: str, request: HttpRequest | None = None) -> str:
    """An absolute link for an e-mail, or "" when no base URL is known (a
    command run from cron has no request; GATECHECK_SITE_URL gives the base)."""
    if request is not None:
        return request.build_absolute_uri(path)
    base = getattr(settings, "GATECHECK_SITE_URL", "").rstrip("/")
    return f"{base}{path}" if base else ""


def _email(*, to: User, subject: str, template: str, context: dict) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        f"[Gatecheck] {subject}",
        render_to_string(f"desk/email/{template}.txt", context),
        None,
        [to.email],
    )
    message.attach_alternative(render_to_string(f"desk/email/{template}.html", context), "text/html")
    return message


@dataclass(frozen=True)
class ReminderItem:
    due_on: date
    what: str
    overdue: bool


def reminder_items(inventory: rules.Inventory, as_of: date) -> list[ReminderItem]:
    """A trader's overdue and due-soon items, with any phone number or address
    masked (e-mail travels further than the app does)."""
    return [
        ReminderItem(item.due_on, mask_text(item.what), item.overdue(as_of))
        for item in rules.coming_due(inventory, as_of, limits(), window_days=DUE_SOON_DAYS)
    ]


def _reminder_message(*, trader: User, items: list[ReminderItem], as_of: date, sender: User | None, request: HttpRequest | None) -> EmailMultiAlternatives:
    overdue = [i for i in items if i.overdue]
    soon = [i for i in items if not i.overdue]
    if overdue:
        subject = f"{len(overdue)} overdue item(s) on your login readiness"
    elif soon:
        subject = "Login readiness items coming due"
    else:
        subject = "A reminder about your login readiness"
    context = {
        "trader": trader,
        "as_of": as_of,
        "overdue": overdue,
        "soon": soon,
        "window": DUE_SOON_DAYS,
        "sender": sender,
        "dashboard_url": _site_url(reverse("checklist:dashboard"), request),
    }
    return _email(to=trader, subject=subject, template="reminder", context=context)


def reminder_send(*, request: HttpRequest, trader: User, as_of: date) -> Sent:
    """A lead's one-click reminder: at most one per trader per day, audited."""
    if not trader.email:
        return Sent.NO_EMAIL
    items = reminder_items(inventories_for([trader.pk])[trader.pk], as_of)
    message = _reminder_message(trader=trader, items=items, as_of=as_of, sender=request.user, request=request)
    result = _send_once(recipient=trader, kind=ReminderLog.Kind.MANUAL, day=as_of, message=message, items=len(items), sent_by=request.user)
    if result is Sent.SENT:
        record_event(
            action="desk.reminder_sent", request=request, subject=trader, object_label=trader.username, details={"items": len(items)}
        )
    return result


@dataclass
class ReminderRun:
    """What one run of ``send_reminders`` did."""

    reminders: int = 0
    digests: int = 0
    already: int = 0
    notes: list[str] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def reminders_send_daily(*, as_of: date) -> ReminderRun:
    """E-mail every trader with overdue or due-soon items, then every lead a
    digest. Running it twice on one day sends nothing the second time."""
    run = ReminderRun()
    member_ids = set(Desk.members.through.objects.values_list("user_id", flat=True))
    users = list(User.objects.filter(is_active=True).exclude(email="").order_by("pk"))
    for start in range(0, len(users), BATCH):
        batch = users[start : start + BATCH]
        inventories = inventories_for([u.pk for u in batch])
        for user in batch:
            inventory = inventories[user.pk]
            # Someone with no desk and nothing recorded is not a trader yet.
            if inventory.is_empty and user.pk not in member_ids:
                continue
            try:
                items = reminder_items(inventory, as_of)
                if not items:
                    continue
                message = _reminder_message(trader=user, items=items, as_of=as_of, sender=None, request=None)
                result = _send_once(recipient=user, kind=ReminderLog.Kind.DAILY, day=as_of, message=message, items=len(items))
            except Exception:
                # One trader's data (or one failed send) never stops the run for the others.
                logger.exception("send_reminders: reminder for user %s on %s failed; skipped", user.pk, as_of.isoformat())
                run.failed.append(user.pk)
                continue
            if result is Sent.SENT:
                run.reminders += 1
            elif result is Sent.FAILED:
                run.failed.append(user.pk)
            else:
                run.already += 1
    for lead in User.objects.filter(is_active=True, led_desks__isnull=False).exclude(email="").distinct().order_by("pk"):
        try:
            result = digest_send(lead=lead, as_of=as_of)
        except Exception:
            logger.exception("send_reminders: digest for lead %s on %s failed; skipped", lead.pk, as_of.isoformat())
            run.failed.append(lead.pk)
            continue
        if result is Sent.SENT:
            run.digests += 1
        elif result is Sent.ALREADY:
            run.already += 1
        elif result is Sent.FAILED:
            run.failed.append(lead.pk)
    return run


@dataclass(frozen=True)
class DigestLine:
    name: str
    score: int | None
    level: str
    detail: str


@dataclass
class DeskDigest:
    desk: Desk
    average: int | None
    level_counts: dict[str, int]
    dropped: list[DigestLine]
    overdue: list[DigestLine]


def desk_digest(desk: Desk, as_of: date) -> DeskDigest:
    """Who dropped a level since the day before, and who is overdue (by kind
    of item only: the digest never names a phone, e-mail or key)."""
    people = list(desk.members.order_by("username").values_list("id", "username", "first_name", "last_name"))
    rows = desk_rows(people, as_of)
    previous = latest_snapshots([r.id for r in rows], as_of - timedelta(days=1))
    dropped, overdue = [], []
    for row in rows:
        before = previous.get(row.id)
        if row.level and before and row.scored_on and before.date < row.scored_on and words.LEVEL_ORDER[row.level] < words.LEVEL_ORDER[before.level]:
            detail = f"{LEVEL_LABELS[before.level]} → {LEVEL_LABELS[row.level]} ({before.score} → {row.score})"
            dropped.append(DigestLine(row.display_name, row.score, LEVEL_LABELS[row.level], detail))
        if row.overdue:
            kinds = ", ".join(words.DUE_KINDS.get(kind, kind) for kind in row.overdue_kinds)
            level = LEVEL_LABELS.get(row.level or "", "Not scored")
            overdue.append(DigestLine(row.display_name, row.score, level, f"{row.overdue} overdue: {kinds}"))
    scored = [r.score for r in rows if r.score is not None]
    return DeskDigest(
        desk=desk,
        average=words.round_half_up(sum(scored), len(scored)) if scored else None,
        level_counts={label: sum(1 for r in rows if r.level == level) for level, label in LEVEL_LABELS.items()},
        dropped=dropped,
        overdue=overdue,
    )


def digest_send(*, lead: User, as_of: date) -> Sent:
    """One digest per lead and day, covering every desk they lead; nothing is
    sent on a day when no trader dropped a level or is overdue."""
    digests = [desk_digest(desk, as_of) for desk in lead.led_desks.order_by("name")]
    if not any(d.dropped or d.overdue for d in digests):
        return Sent.NOTHING
    context = {"lead": lead, "as_of": as_of, "digests": digests, "desk_url": _site_url(reverse("desk:dashboard"))}
    count = sum(len(d.dropped) + len(d.overdue) for d in digests)
    message = _email(to=lead, subject=f"Desk digest for {as_of:%Y-%m-%d}", template="digest", context=context)
    return _send_once(recipient=lead, kind=ReminderLog.Kind.DIGEST, day=as_of, message=message, items=count)


# --------------------------------------------------------------------------
# MFA reset and export
# --------------------------------------------------------------------------


def trader_mfa_reset(*, request: HttpRequest, trader: User, reason: str) -> None:
    """Reset a locked-out trader's factors on behalf of their lead (or a
    superuser): accounts.services.mfa_reset removes every factor, ends the
    sessions, audits and e-mails; the next sign-in starts a new enrolment."""
    if not can_reset_mfa(request.user, trader):
        raise PermissionDenied("You may not reset this account's two-factor authentication.")
    mfa_reset(request=request, trader=trader, reason=reason)


EXPORT_HEADER = ["username", "name", "score", "level", "change_7d", "scored_on", "overdue", "due_soon", *RULE_IDS]


def _cell(value: object) -> object:
    # A spreadsheet runs a cell that starts with = + - @ as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def desk_export(*, request: HttpRequest, table: DeskTable, filters: dict[str, object]) -> str:
    """The shown rows of the desk table as CSV, audited as ``desk.exported``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_HEADER)
    for row in table.shown:
        writer.writerow(
            [
                _cell(row.username),
                _cell(row.name),
                row.score if row.score is not None else "",
                row.level or "",
                row.change if row.change is not None else "",
                row.scored_on.isoformat() if row.scored_on else "",
                row.overdue,
                row.due_soon,
                *(words.STATUS_WORDS.get(row.cells[rid] or "", "") for rid in RULE_IDS),
            ]
        )
    record_event(
        action="desk.exported",
        request=request,
        object_label=f"{len(table.shown)} traders",
        details={"rows": len(table.shown), "filters": {k: str(v) for k, v in filters.items() if v}},
    )
    return out.getvalue()
