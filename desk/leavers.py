"""The leaver checklist (issue "A firm can adopt it", part 4): when a person
is deactivated, each desk they were on gets the list of what must now be
revoked at the broker, from the inventory Gatecheck already holds (their API
keys with label and fingerprint, their bots, whose ping tokens are already
disabled, and their trusted devices). A lead ticks each item off; each tick
is audited with its time and name."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import User
from accounts.selectors import desks_for
from devices.models import ApiKey, Automation, TrustedDevice

from .models import LeaverCheck, LeaverItem


def items_for(user: User) -> list[LeaverItem]:
    """What is to be revoked at the broker for ``user``, unsaved."""
    keys = ApiKey.objects.filter(owner=user).exclude(status=ApiKey.Status.REVOKED).order_by("label")
    bots = Automation.objects.filter(owner=user).select_related("api_key").order_by("name")
    devices = TrustedDevice.objects.filter(owner=user).exclude(status=TrustedDevice.Status.REVOKED).order_by("name")
    return [
        *(LeaverItem(kind=LeaverItem.Kind.KEY, label=k.label, detail=f"…{k.fingerprint}" if k.fingerprint else "no fingerprint recorded") for k in keys),
        *(LeaverItem(kind=LeaverItem.Kind.BOT, label=b.name, detail=f"{_bot_login(b)}; ping token disabled") for b in bots),
        *(LeaverItem(kind=LeaverItem.Kind.DEVICE, label=d.name, detail=d.get_kind_display()) for d in devices),
    ]


def _bot_login(bot: Automation) -> str:
    return f"uses key {bot.api_key.label}" if bot.api_key else "runs on the human login"


def on_user_deactivated(sender, user: User, by: User | None, desks: list, **kwargs) -> None:
    """accounts.signals.user_deactivated receiver: one checklist per desk."""
    if not desks:
        return
    items = items_for(user)
    with transaction.atomic():
        checks = LeaverCheck.objects.bulk_create([LeaverCheck(desk=desk, leaver=user, opened_by=by) for desk in desks])
        LeaverItem.objects.bulk_create(
            [LeaverItem(check_list=check, kind=i.kind, label=i.label, detail=i.detail) for check in checks for i in items]
        )


def checks_for(viewer: User) -> QuerySet[LeaverCheck]:
    """The checklists of the desks ``viewer`` oversees, open ones first."""
    return (
        LeaverCheck.objects.filter(desk__in=desks_for(viewer))
        .select_related("desk", "leaver")
        .annotate(left=Count("items", filter=Q(items__done_at__isnull=True)))
        .order_by("-left", "-opened_at")
    )


def tick(*, item: LeaverItem, by: User, request: HttpRequest | None = None) -> bool:
    """Mark one item done, once; audited."""
    done = LeaverItem.objects.filter(pk=item.pk, done_at__isnull=True).update(done_at=timezone.now(), done_by=by)
    if done:
        check = item.check_list
        record_event(
            action="leaver.item_done",
            request=request,
            subject=check.leaver,
            object_label=f"{item.get_kind_display()} {item.label}",
            details={"desk": check.desk.name, "kind": item.kind},
        )
    return bool(done)
