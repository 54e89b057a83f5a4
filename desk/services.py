"""Writes with side effects for desk leads: reminders, digests, MFA resets,
exports, and the "Desk leads" group that lets leads into the admin panel."""

from __future__ import annotations

import csv
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import HttpRequest
from django.tasks import TaskResult, TaskResultStatus, task
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import mail
from accounts.audit import record_event
from accounts.background import stop_point
from accounts.models import Desk, User
from accounts.services import mfa_reset, rows_delete_batched
from devices.selectors import inventories_for, limits
from readiness import rules
from readiness import vocabulary as words
from readiness.masking import mask_text

from .models import ReminderLog
from .selectors import (
    LEVEL_LABELS,
    RULE_IDS,
    DeskQuery,
    DeskRow,
    can_reset_mfa,
    desk_export_count,
    desk_export_rows,
    desk_rows,
    previous_levels,
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
    ("devices", "tradingprofile"),
    ("devices", "subscription"),
    ("devices", "drill"),
    ("devices", "acceptedrisk"),
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


def _claim(*, kind: str, day: date, items: dict[int, int], sent_by: User | None = None, delivered: bool = True) -> set[int]:
    """Claim the (recipient, kind, day) rows of people; returns whose claims
    this call won.

    The unique constraint lets one insert win when two runs race, and each
    reads back its own token. A claim that waits on another run's uncommitted
    insert of the same row wins only if that run rolls back (its send failed).
    """
    if not items:
        return set()
    token = uuid.uuid4()
    ReminderLog.objects.bulk_create(
        [
            ReminderLog(recipient_id=uid, kind=kind, date=day, sent_by=sent_by, item_count=count, claim=token, delivered=delivered)
            for uid, count in items.items()
        ],
        ignore_conflicts=True,
    )
    return set(ReminderLog.objects.filter(recipient_id__in=list(items), kind=kind, date=day, claim=token).values_list("recipient_id", flat=True))


@dataclass
class Delivery:
    sent: int = 0
    already: int = 0
    failed: list[int] = field(default_factory=list)


def _deliver(*, kind: str, day: date, messages: dict[int, dict], counts: dict[int, int] | None = None) -> Delivery:
    """Send each message in the one transaction that holds its claim, over one
    mail-server connection: a message is sent and claimed, or unclaimed and
    left for the next run; never lost, never sent twice.

    With ``counts`` (the daily run) each claim is inserted here; without, the
    claims were taken in a request (a lead's click) and are locked here and
    marked delivered. A message that fails gives its claim back."""
    done = Delivery()
    pending = list(messages)
    if not pending:
        return done
    try:
        with mail.mail_connection() as connection:
            while pending:
                stop_point()  # a stopping worker stops here, between two messages
                uid = pending.pop(0)
                with transaction.atomic():
                    if counts is not None:
                        won = uid in _claim(kind=kind, day=day, items={uid: counts[uid]})
                    else:
                        won = ReminderLog.objects.select_for_update().filter(recipient_id=uid, kind=kind, date=day, delivered=False).exists()
                    if not won:
                        done.already += 1
                        continue
                    if mail.send_one(connection, {"message_id": mail.message_id(kind, uid, day), **messages[uid]}):
                        if counts is None:
                            ReminderLog.objects.filter(recipient_id=uid, kind=kind, date=day).update(delivered=True, sent_at=timezone.now())
                        done.sent += 1
                        continue
                    ReminderLog.objects.filter(recipient_id=uid, kind=kind, date=day).delete()
                done.failed.append(uid)
    except mail.MailUnavailable:
        # Raised on connecting, before any message: none was sent or claimed here.
        logger.exception("mail: the mail server could not be reached; %d reminder e-mail(s) not sent", len(pending))
        done.failed += pending
        if counts is None:
            ReminderLog.objects.filter(recipient_id__in=pending, kind=kind, date=day, delivered=False).delete()
    else:
        mail.counted(done.sent, len(done.failed))
    return done


def _send_claimed(*, kind: str, day: date, wanted: dict, count, build, run: ReminderRun, what: str) -> int:
    """The daily e-mails of one batch: build each person's message in
    ``wanted`` (``count`` gives the items recorded), then claim and send each
    in one transaction (``_deliver``). A message that cannot be built or sent
    (logged) is left unclaimed, so the next run tries that person again.
    Returns how many were sent."""
    done = set(ReminderLog.objects.filter(recipient__in=list(wanted), kind=kind, date=day).values_list("recipient_id", flat=True))
    run.already += len(done)
    messages, counts = {}, {}
    for person, content in wanted.items():
        if person.pk in done:
            continue
        try:
            messages[person.pk] = build(person, content)
            counts[person.pk] = count(content)
        except Exception:
            logger.exception("send_reminders: %s for user %s on %s failed; skipped", what, person.pk, day.isoformat())
            run.failed.append(person.pk)
    delivery = _deliver(kind=kind, day=day, messages=messages, counts=counts)
    run.already += delivery.already
    run.failed += delivery.failed
    return delivery.sent


def _site_url(path: str, request: HttpRequest | None = None) -> str:
    """An absolute link for an e-mail, or "" when no base URL is known (a
    background task has no request; GATECHECK_SITE_URL gives the base)."""
    if request is not None:
        return request.build_absolute_uri(path)
    base = getattr(settings, "GATECHECK_SITE_URL", "").rstrip("/")
    return f"{base}{path}" if base else ""


def _email(*, to: User, subject: str, template: str, context: dict) -> dict:
    return mail.payload(
        to=[to.email],
        subject=f"[Gatecheck] {subject}",
        body=render_to_string(f"desk/email/{template}.txt", context),
        html=render_to_string(f"desk/email/{template}.html", context),
    )


@dataclass(frozen=True)
class ReminderItem:
    due_on: date
    what: str
    overdue: bool


def reminder_items(inventory: rules.Inventory, as_of: date, lim: rules.Limits | None = None) -> list[ReminderItem]:
    """A trader's overdue and due-soon items, with any phone number or address
    masked (e-mail travels further than the app does)."""
    return [
        ReminderItem(item.due_on, mask_text(item.what), item.overdue(as_of))
        for item in rules.coming_due(inventory, as_of, lim or limits())
    ]


def _reminder_message(*, trader: User, items: list[ReminderItem], as_of: date, sender: User | None, request: HttpRequest | None) -> dict:
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
        "window": rules.DUE_SOON_DAYS,
        "sender": sender,
        "dashboard_url": _site_url(reverse("checklist:dashboard"), request),
    }
    return _email(to=trader, subject=subject, template="reminder", context=context)


def reminder_send(*, request: HttpRequest, trader: User, as_of: date) -> Sent:
    """A lead's one-click reminder: at most one per trader per day, audited.

    The day's claim is taken here, so a second click says "already"; the
    e-mail itself leaves from a background task (``reminders_deliver``).
    """
    if not mail.confirmed_addresses([trader]):
        return Sent.NO_EMAIL
    items = reminder_items(inventories_for([trader.pk])[trader.pk], as_of)
    kind = ReminderLog.Kind.MANUAL
    if trader.pk not in _claim(kind=kind, day=as_of, items={trader.pk: len(items)}, sent_by=request.user, delivered=False):
        return Sent.ALREADY
    message = _reminder_message(trader=trader, items=items, as_of=as_of, sender=request.user, request=request)
    queued = reminders_enqueue(kind=kind, day=as_of, messages={trader.pk: message})
    if queued is None:
        ReminderLog.objects.filter(recipient=trader, kind=kind, date=as_of).delete()
        return Sent.FAILED
    if queued.status == TaskResultStatus.SUCCESSFUL and queued.return_value == 0:
        # A backend that runs tasks at once (tests, or a deployment without a
        # worker) already knows the send failed; the task gave the claim back.
        return Sent.FAILED
    record_event(action="desk.reminder_sent", request=request, subject=trader, object_label=trader.username, details={"items": len(items)})
    return Sent.SENT


def reminders_enqueue(*, kind: str, day: date, messages: dict[int, dict]) -> TaskResult | None:
    """Queue claimed messages for the worker; None (logged) if the queue cannot be reached."""
    try:
        return reminders_deliver.enqueue(kind, day.isoformat(), [[uid, message] for uid, message in messages.items()])
    except Exception:
        logger.exception("mail: queueing %d reminder(s) failed", len(messages))
        return None


@task
def reminders_deliver(kind: str, day: str, messages: list[list]) -> int:
    """The worker's half of ``reminder_send``: send reminders already claimed
    in a request; a failure gives the claim back. Returns how many were sent.

    Twice is safe: the claim is marked delivered in the transaction that
    sends, so a second run skips what the first delivered."""
    return _deliver(kind=kind, day=date.fromisoformat(day), messages={uid: message for uid, message in messages}).sent


@dataclass
class ReminderRun:
    """What one run of ``send_reminders`` did."""

    reminders: int = 0
    digests: int = 0
    already: int = 0
    notes: list[str] = field(default_factory=list)
    # Who was not reminded because of an error (logged); the next run tries again.
    failed: list[int] = field(default_factory=list)


def reminders_send_daily(*, as_of: date) -> ReminderRun:
    """E-mail every trader with overdue or due-soon items, then every lead a
    digest. Running it twice on one day sends nothing the second time; an
    e-mail that failed (logged) is tried again by the next run.

    Batches of 500 people, read by primary key: per batch a fixed number of
    queries (people, inventories, claim, read-back) and one mail-server
    connection.
    """
    run = ReminderRun()
    kind = ReminderLog.Kind.DAILY
    users = mail.confirmed_recipients(User.objects.filter(is_active=True)).annotate(
        on_desk=Exists(Desk.members.through.objects.filter(user_id=OuterRef("pk")))
    ).order_by("pk")
    last = 0
    while batch := list(users.filter(pk__gt=last)[:BATCH]):
        last = batch[-1].pk
        inventories = inventories_for([u.pk for u in batch])
        due: dict[User, list[ReminderItem]] = {}
        for user in batch:
            inventory = inventories[user.pk]
            # Someone with no desk and nothing recorded is not a trader yet.
            if inventory.is_empty and not user.on_desk:
                continue
            try:
                items = reminder_items(inventory, as_of)
                if items:
                    due[user] = items
            except Exception:
                # One trader's data never stops the run for the others.
                logger.exception("send_reminders: reminder for user %s on %s failed; skipped", user.pk, as_of.isoformat())
                run.failed.append(user.pk)
        run.reminders += _send_claimed(
            kind=kind, day=as_of, wanted=due, count=len, run=run, what="reminder",
            build=lambda user, items: _reminder_message(trader=user, items=items, as_of=as_of, sender=None, request=None),
        )
    digests_send_daily(as_of=as_of, run=run)
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


def desk_digests(desks: list[Desk], as_of: date) -> dict[int, DeskDigest]:
    """Who dropped a level since the day before, and who is overdue (by kind
    of item only: the digest never names a phone, e-mail or key), for many
    desks in three queries: members, current rows, the day before's scores."""
    members: dict[int, list[int]] = {desk.pk: [] for desk in desks}
    for desk_id, user_id in Desk.members.through.objects.filter(desk_id__in=list(members)).values_list("desk_id", "user_id"):
        members[desk_id].append(user_id)
    everyone = {uid for ids in members.values() for uid in ids}
    rows = {row.id: row for row in desk_rows(everyone, as_of)}
    previous = previous_levels(everyone, as_of)
    out = {}
    for desk in desks:
        desk_rows_ = sorted((rows[uid] for uid in members[desk.pk]), key=lambda r: r.username)
        dropped, overdue = [], []
        for row in desk_rows_:
            before = previous.get(row.id)
            if row.level and before and row.scored_on and before[0] < row.scored_on and words.LEVEL_ORDER[row.level] < words.LEVEL_ORDER[before[2]]:
                detail = f"{LEVEL_LABELS[before[2]]} → {LEVEL_LABELS[row.level]} ({before[1]} → {row.score})"
                dropped.append(DigestLine(row.display_name, row.score, LEVEL_LABELS[row.level], detail))
            if row.overdue:
                kinds = ", ".join(words.DUE_KINDS.get(kind, kind) for kind in row.overdue_kinds)
                level = LEVEL_LABELS.get(row.level or "", "Not scored")
                overdue.append(DigestLine(row.display_name, row.score, level, f"{row.overdue} overdue: {kinds}"))
        scored = [r.score for r in desk_rows_ if r.score is not None]
        out[desk.pk] = DeskDigest(
            desk=desk,
            average=words.round_half_up(sum(scored), len(scored)) if scored else None,
            level_counts={label: sum(1 for r in desk_rows_ if r.level == level) for level, label in LEVEL_LABELS.items()},
            dropped=dropped,
            overdue=overdue,
        )
    return out


def desk_digest(desk: Desk, as_of: date) -> DeskDigest:
    return desk_digests([desk], as_of)[desk.pk]


DIGEST_BATCH = 10


def digests_send_daily(*, as_of: date, run: ReminderRun) -> None:
    """One digest per lead and day, covering every desk they lead; nothing is
    sent on a day when no trader dropped a level or is overdue. Leads in
    batches of 10 (their desks are read whole), each batch one mail-server
    connection."""
    kind = ReminderLog.Kind.DIGEST
    leads = mail.confirmed_recipients(User.objects.filter(is_active=True, led_desks__isnull=False)).distinct().order_by("pk")
    last = 0
    while batch := list(leads.filter(pk__gt=last)[:DIGEST_BATCH]):
        last = batch[-1].pk
        led: dict[int, list[Desk]] = {lead.pk: [] for lead in batch}
        desks = {}
        for link in Desk.leads.through.objects.filter(user_id__in=list(led)).select_related("desk").order_by("desk__name"):
            led[link.user_id].append(link.desk)
            desks[link.desk_id] = link.desk
        digests = desk_digests(list(desks.values()), as_of)
        wanted = {}
        for lead in batch:
            own = [digests[desk.pk] for desk in led[lead.pk]]
            if any(d.dropped or d.overdue for d in own):
                wanted[lead] = own
        run.digests += _send_claimed(
            kind=kind, day=as_of, wanted=wanted, run=run, what="digest",
            count=lambda own: sum(len(d.dropped) + len(d.overdue) for d in own),
            build=lambda lead, own: _digest_message(lead=lead, digests=own, as_of=as_of),
        )


def _digest_message(*, lead: User, digests: list[DeskDigest], as_of: date) -> dict:
    context = {"lead": lead, "as_of": as_of, "digests": digests, "desk_url": _site_url(reverse("desk:dashboard"))}
    return _email(to=lead, subject=f"Desk digest for {as_of:%Y-%m-%d}", template="digest", context=context)


def digest_send(*, lead: User, as_of: date) -> Sent:
    """One lead's digest now (the daily run sends them in batches)."""
    before = ReminderLog.objects.filter(recipient=lead, kind=ReminderLog.Kind.DIGEST, date=as_of).exists()
    digests = desk_digests(list(lead.led_desks.order_by("name")), as_of)
    if not any(d.dropped or d.overdue for d in digests.values()):
        return Sent.NOTHING
    if before:
        return Sent.ALREADY
    kind = ReminderLog.Kind.DIGEST
    items = sum(len(d.dropped) + len(d.overdue) for d in digests.values())
    if lead.pk not in _claim(kind=kind, day=as_of, items={lead.pk: items}):
        return Sent.ALREADY
    failed = _deliver(kind=kind, day=as_of, messages={lead.pk: _digest_message(lead=lead, digests=list(digests.values()), as_of=as_of)})
    return Sent.FAILED if failed else Sent.SENT


# --------------------------------------------------------------------------
# MFA reset and export
# --------------------------------------------------------------------------


def trader_mfa_reset(*, request: HttpRequest, trader: User, reason: str) -> str:
    """Reset a locked-out trader's factors on behalf of their lead (or a
    superuser): accounts.services.mfa_reset removes every factor, ends the
    sessions, audits and e-mails; the next sign-in starts a new enrolment,
    which needs the enrolment code returned here."""
    if not can_reset_mfa(request.user, trader):
        raise PermissionDenied("You may not reset this account's two-factor authentication.")
    return mfa_reset(request=request, trader=trader, reason=reason)


EXPORT_HEADER = ["username", "name", "score", "level", "change_7d", "scored_on", "overdue", "due_soon", *RULE_IDS]


def _cell(value: object) -> object:
    # A spreadsheet runs a cell that starts with = + - @ as a formula.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def desk_export(*, request: HttpRequest, viewer: User, as_of: date, query: DeskQuery, filters: dict[str, object]) -> Iterator[str]:
    """The whole filtered desk as CSV lines, streamed (memory stays bounded
    at any size), audited as ``desk.exported`` before the first line."""
    count = desk_export_count(viewer=viewer, as_of=as_of, query=query)
    record_event(
        action="desk.exported",
        request=request,
        object_label=f"{count} traders",
        details={"rows": count, "filters": {k: str(v) for k, v in filters.items() if v}},
    )
    return _csv_lines(desk_export_rows(viewer=viewer, as_of=as_of, query=query))


class _Line:
    """A file-like target for csv.writer that hands back each line written."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterable[DeskRow]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(EXPORT_HEADER)
    for row in rows:
        yield writer.writerow(
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


def reminder_logs_prune(*, as_of: date | None = None) -> int:
    """Delete reminder logs of days older than GATECHECK_REMINDER_RETENTION_DAYS,
    for the hourly task; returns how many went. A log only keeps one day's
    reminder from going twice; older ones are kept a while to look at."""
    horizon = (as_of or timezone.localdate()) - timedelta(days=settings.GATECHECK_REMINDER_RETENTION_DAYS)
    return rows_delete_batched(ReminderLog.objects.filter(date__lt=horizon))
