"""Offboarding (issue "A firm can adopt it", part 4): a person made inactive,
by any path (SCIM, the admin, a lead on the desk, a command), loses every
way in at once and keeps everything they leave behind.

``deactivate`` is the one service; a pre_save/post_save pair catches the
paths that only flip ``is_active`` (the admin's checkbox, the shell), so none
of them can skip a step. What happens:

- every session ends on the server (the next request is signed out), every
  trusted browser, API token and calendar token dies, lead rights go;
- the inventory and the audit trail stay; the person leaves their desks'
  tables and totals;
- the desks' leads are told, and the apps above (``user_deactivated``)
  disable the person's ping tokens and open each desk's leaver checklist.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from . import mail, services, signin, tokens
from .audit import record_event
from .models import Desk, Invitation, User
from .signals import access_revoked, user_deactivated


def deactivate(*, user: User, by: User | None, request: HttpRequest | None = None, via: str) -> bool:
    """Make ``user`` inactive and offboard them; False if they were already."""
    with transaction.atomic():
        person = User.objects.select_for_update().filter(pk=user.pk, is_active=True).first()
        if person is None:
            return False
        person.is_active = False
        person._offboarding = {"by": by, "request": request, "via": via}
        person.save(update_fields=["is_active"])
    user.is_active = False
    return True


def on_user_saving(sender, instance: User, update_fields=None, **kwargs) -> None:
    """pre_save: notice an active person being made inactive (a save that
    does not write ``is_active`` makes no one inactive)."""
    writes = update_fields is None or "is_active" in update_fields
    instance._leaving = bool(writes and instance.pk and not instance.is_active and User.objects.filter(pk=instance.pk, is_active=True).exists())


def on_user_saved(sender, instance: User, **kwargs) -> None:
    """post_save: offboard a person who was just made inactive."""
    if getattr(instance, "_leaving", False):
        instance._leaving = False
        offboard(instance, **getattr(instance, "_offboarding", {"by": None, "request": None, "via": "admin"}))


def offboard(user: User, *, by: User | None, request: HttpRequest | None, via: str) -> None:
    """Everything that follows ``user`` being made inactive (the module's list), once."""
    desks = list(Desk.objects.filter(members=user).prefetch_related("leads"))
    led = [desk.name for desk in user.led_desks.all()]
    tokens.revoke_all(user=user, reason="person deactivated", request=request)
    # The links they sent stop working too.
    Invitation.objects.open().filter(invited_by=user).update(revoked_at=timezone.now(), digest="")
    sessions = services.sessions_end(user=user)
    signin.trust_void(user=user, reason="account deactivated", request=request)
    access_revoked.send(sender=User, user=user)
    user.led_desks.clear()  # the desk app's receiver takes the admin rights with them
    record_event(
        action="user.deactivated",
        request=request,
        actor=by,
        subject=user,
        object_label=user.username,
        details={"via": via, "desks": [d.name for d in desks], "led": led, "sessions_ended": sessions},
    )
    user_deactivated.send(sender=User, user=user, by=by, desks=desks)
    if desks:
        # Off the desks' tables and totals; each desk keeps the leaver checklist.
        user.desks.remove(*desks)
    leads = mail.confirmed_addresses({lead.pk: lead for desk in desks for lead in desk.leads.all() if lead.pk != user.pk}.values())
    if leads:
        name = user.get_full_name() or user.username
        body = (
            f"{name} ({user.username}) was deactivated ({via}). Their Gatecheck sessions, trusted browsers and tokens "
            "are gone, and their bots' ping tokens are disabled.\n\n"
            "Their desk has a leaver checklist: the API keys, bots and trusted devices to revoke at the broker now. "
            "Tick each item off on the desk's Leavers page as you do it."
        )
        mail.enqueue([mail.payload(to=leads, subject=f"[Gatecheck] {name} left: revoke their broker access", body=body, kind="leaver notice")])
