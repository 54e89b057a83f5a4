"""The desk's people: invitations, removing or deactivating a trader, and
the leaver checklists (issue "A firm can adopt it", parts 1, 4 and 5).
Inviting, resending, removing and deactivating need a fresh code (accounts.policy)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from accounts import invitations, offboarding
from accounts.audit import record_event
from accounts.decorators import desk_lead_required
from accounts.models import Invitation
from accounts.selectors import desks_for, overseen_users

from . import leavers
from .forms import InviteForm, OffboardForm
from .models import LeaverItem
from .selectors import can_act_on


def _invitations_page(request: HttpRequest, form: InviteForm, results=None, status: int = 200) -> HttpResponse:
    rows = Invitation.objects.filter(desk__in=desks_for(request.user)).select_related("desk", "invited_by", "accepted_by")[:200]
    return render(request, "desk/invitations.html", {"form": form, "invitations": rows, "results": results}, status=status)


@desk_lead_required
@never_cache
def invitations_list(request: HttpRequest) -> HttpResponse:
    return _invitations_page(request, InviteForm(desks=desks_for(request.user)))


@desk_lead_required
@never_cache
def invite(request: HttpRequest) -> HttpResponse:
    """Invite one address or a list to one of the lead's desks."""
    form = InviteForm(request.POST or None, request.FILES or None, desks=desks_for(request.user))
    if request.method != "POST":
        return _invitations_page(request, form)
    if not form.is_valid():
        return _invitations_page(request, form, status=400)
    desk = form.cleaned_data["desk"]
    results = invitations.invite(desk=desk, addresses=form.cleaned_data["found"], by=request.user, request=request)
    sent = sum(1 for _, outcome in results if outcome == invitations.INVITED)
    messages.success(request, f"{sent} invitation{'s' if sent != 1 else ''} to {desk.name} on their way.")
    return _invitations_page(request, InviteForm(desks=desks_for(request.user)), results=results)


def _own_invitation(request: HttpRequest, pk: int) -> Invitation:
    return get_object_or_404(Invitation.objects.filter(desk__in=desks_for(request.user)).select_related("desk"), pk=pk)


@desk_lead_required
@require_POST
def invitation_resend(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _own_invitation(request, pk)
    if invitations.resend(invitation=invitation, by=request.user, request=request):
        messages.success(request, f"A new link went to {invitation.email}; the old one no longer works.")
    else:
        messages.info(request, f"The invitation of {invitation.email} is {invitation.get_status_display().lower()}: nothing to send.")
    return redirect("desk:invitations")


@desk_lead_required
@require_POST
def invitation_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    invitation = _own_invitation(request, pk)
    if invitations.revoke(invitation=invitation, by=request.user, request=request):
        messages.success(request, f"The invitation of {invitation.email} is revoked.")
    return redirect("desk:invitations")


# --- Removing and deactivating ---------------------------------------------------


def _trader_to_act_on(request: HttpRequest, pk: int):
    trader = get_object_or_404(overseen_users(request.user), pk=pk)
    if not can_act_on(request.user, trader):
        raise PermissionDenied("You may not change this account.")
    return trader


@desk_lead_required
@never_cache
def trader_remove(request: HttpRequest, pk: int) -> HttpResponse:
    """Take a trader off the lead's desks (the account stays)."""
    trader = _trader_to_act_on(request, pk)
    desks = list(desks_for(request.user).filter(members=trader))
    form = OffboardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        for desk in desks:
            desk.members.remove(trader)
            record_event(action="desk.member_removed", request=request, subject=trader, object_label=f"{trader.username} from {desk.name}")
        messages.success(request, f"{trader.get_full_name() or trader.username} is no longer on {', '.join(d.name for d in desks) or 'your desks'}.")
        return redirect("desk:dashboard")
    return render(request, "desk/trader_offboard.html", {"trader": trader, "desks": desks, "form": form, "action": "remove"})


@desk_lead_required
@never_cache
def trader_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    """Deactivate a trader: every way in ends now; a leaver checklist opens."""
    trader = _trader_to_act_on(request, pk)
    if not request.user.is_superuser and trader.desks.exclude(leads=request.user).exists():
        # Deactivation ends access everywhere: not one lead's call alone.
        raise PermissionDenied("This trader is also on a desk you do not lead: ask a superuser to deactivate them.")
    form = OffboardForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        name = trader.get_full_name() or trader.username
        if offboarding.deactivate(user=trader, by=request.user, request=request, via="desk"):
            messages.success(request, f"{name} is deactivated. Work through the leaver checklist below.")
        else:
            messages.info(request, f"{name} was deactivated already.")
        return redirect("desk:leavers")
    desks = list(desks_for(request.user).filter(members=trader))
    return render(request, "desk/trader_offboard.html", {"trader": trader, "desks": desks, "form": form, "action": "deactivate"})


# --- Leaver checklists ------------------------------------------------------------


@desk_lead_required
@never_cache
def leavers_list(request: HttpRequest) -> HttpResponse:
    checks = list(leavers.checks_for(request.user)[:50])
    items = LeaverItem.objects.filter(check_list__in=checks).select_related("done_by")
    by_check: dict[int, list[LeaverItem]] = {}
    for item in items:
        by_check.setdefault(item.check_list_id, []).append(item)
    return render(request, "desk/leavers.html", {"checks": [(c, by_check.get(c.pk, [])) for c in checks]})


@desk_lead_required
@require_POST
def leaver_item_done(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(
        LeaverItem.objects.filter(check_list__desk__in=desks_for(request.user)).select_related("check_list__leaver", "check_list__desk"), pk=pk
    )
    if leavers.tick(item=item, by=request.user, request=request):
        messages.success(request, f"Done: {item.get_kind_display()} {item.label}.")
    return redirect("desk:leavers")
