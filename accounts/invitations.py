"""Invitations: a desk lead (for their desks) or a superuser brings people in
by e-mail (issue "A firm can adopt it", part 1; SECURITY.md 34).

An invitation is a row per desk and address. Its link leaves only from the
worker (``mail.linked_send``), which makes a new secret each time it sends
and keeps its SHA-256: the task table never holds a working link, a command
never prints one, and only the newest link of an invitation works. The link
is signed (it names the row) and good for seven days, once.
"""

from __future__ import annotations

import csv
import hmac
import io
import re
import secrets
from collections.abc import Iterable
from urllib.parse import urljoin

from django.core import signing
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from . import mail
from .audit import record_event, record_events
from .models import Desk, Invitation, User, has_verified_email, token_digest
from .net import site_base

MAX_PER_BATCH = 500
LINK_SALT = "accounts.invitations.link"

INVITED = "invited"
MEMBER = "already a member"


_SEPARATORS = re.compile(r"[\s,;]+")


def addresses_from(text: str = "", upload: bytes | None = None) -> list[str]:
    """The addresses in a pasted list (commas, semicolons, spaces or lines)
    and in a CSV file (every cell holding an @), in order, each once."""
    found = [part for part in _SEPARATORS.split(text) if part]
    if upload:
        rows = csv.reader(io.StringIO(upload.decode("utf-8-sig", errors="replace")))
        found += [cell.strip() for row in rows for cell in row if "@" in cell]
    seen: dict[str, None] = {}
    for raw in found:
        seen.setdefault(raw.strip().lower(), None)
    return list(seen)


def refusal(address: str) -> str | None:
    """Why an address cannot be invited, or None."""
    try:
        validate_email(address)
    except ValidationError:
        return "not an e-mail address"
    return None


def invite(*, desk: Desk, addresses: Iterable[str], by: User | None, request: HttpRequest | None = None) -> list[tuple[str, str]]:
    """Invite each address to ``desk``: one line per address, ``invited``,
    ``already a member`` or ``refused: <why>``. An address with an open
    invitation is sent a new link (its seven days start again). A fixed
    number of queries per batch, plus one task row per e-mail."""
    addresses = list(addresses)
    if len(addresses) > MAX_PER_BATCH:
        raise ValidationError(f"At most {MAX_PER_BATCH} addresses at a time; this list has {len(addresses)}.")
    outcome: dict[str, str] = {}
    for address in addresses:
        why = refusal(address)
        outcome[address] = f"refused: {why}" if why else INVITED
    wanted = [a for a, result in outcome.items() if result == INVITED]
    confirmed = desk.members.filter(has_verified_email()).annotate(address=Lower("email"))
    members = set(confirmed.filter(address__in=wanted).values_list("address", flat=True))
    for address in members:
        outcome[address] = MEMBER
    wanted = [a for a in wanted if a not in members]
    now = timezone.now()
    with transaction.atomic():
        renewed = list(Invitation.objects.open().filter(desk=desk, email__in=wanted).select_for_update())
        Invitation.objects.filter(pk__in=[i.pk for i in renewed]).update(expires_at=now + Invitation.LIFETIME, invited_by=by)
        known = {i.email for i in renewed}
        # Another lead may be inviting the same address this moment: the
        # partial unique index keeps one open invitation, read back below.
        Invitation.objects.bulk_create(
            [Invitation(email=a, desk=desk, invited_by=by, created_at=now, expires_at=now + Invitation.LIFETIME) for a in wanted if a not in known],
            ignore_conflicts=True,
        )
        rows = list(Invitation.objects.open().filter(desk=desk, email__in=wanted))
        record_events(
            [
                {"action": "invitation.sent", "request": request, "actor": by, "object_label": f"{row.email} to {desk.name}", "details": {"desk": desk.name}}
                for row in rows
            ]
        )
    base = request.build_absolute_uri("/") if request is not None else site_base() + "/"
    for row in rows:
        mail.linked_enqueue("invite", row.pk, base=base)
    return list(outcome.items())


def resend(*, invitation: Invitation, by: User, request: HttpRequest | None = None) -> bool:
    """A new link for an open invitation, good for another seven days."""
    if invitation.accepted_at or invitation.revoked_at:
        return False
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() + Invitation.LIFETIME)
    record_event(action="invitation.resent", request=request, actor=by, object_label=f"{invitation.email} to {invitation.desk.name}")
    base = request.build_absolute_uri("/") if request is not None else site_base() + "/"
    return mail.linked_enqueue("invite", invitation.pk, base=base)


def revoke(*, invitation: Invitation, by: User, request: HttpRequest | None = None) -> bool:
    """The invitation's link stops working; accepted ones stay accepted."""
    done = Invitation.objects.open().filter(pk=invitation.pk).update(revoked_at=timezone.now(), digest="")
    if done:
        record_event(action="invitation.revoked", request=request, actor=by, object_label=f"{invitation.email} to {invitation.desk.name}")
    return bool(done)


# --- The link ---------------------------------------------------------------------


def invitation_message(invitation_id: int, base: str, extra: dict) -> dict | None:
    """Built by the worker as the e-mail leaves: a new secret, its digest
    stored, the link in the body. Nothing is sent for an invitation no longer
    pending. The one address that gets mail before it is confirmed, like the
    confirmation link itself: following the link is what confirms it."""
    invitation = Invitation.objects.pending().select_related("desk", "invited_by").filter(pk=invitation_id).first()
    if invitation is None:
        return None
    secret = secrets.token_urlsafe(32)  # 256 random bits
    Invitation.objects.filter(pk=invitation.pk).update(digest=token_digest(secret), sent_at=timezone.now())
    token = signing.dumps({"i": invitation.pk, "s": secret}, salt=LINK_SALT)
    link = urljoin(base, reverse("accounts:invitation_accept", args=[token]))
    who = invitation.invited_by.get_full_name() or invitation.invited_by.username if invitation.invited_by else "Your firm"
    body = (
        f"{who} invited you to the desk {invitation.desk.name} on Gatecheck, which keeps your broker login ready.\n\n"
        f"{link}\n\n"
        f"The link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC. You choose a password and set up a second "
        "factor (an authenticator app), or sign in with your firm's single sign-on.\n\n"
        "If you did not expect this, ignore this message."
    )
    return mail.payload(to=[invitation.email], subject=f"[Gatecheck] You are invited to the desk {invitation.desk.name}", body=body, kind="invitation")


mail.LINKED_MESSAGES["invite"] = invitation_message


def from_token(token: str) -> Invitation | None:
    """The pending invitation a link names, or None (bad, old, used, revoked,
    or replaced by a newer link)."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=Invitation.LIFETIME)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(data.get("s"), str):
        return None
    invitation = Invitation.objects.pending().select_related("desk").filter(pk=data["i"]).first()
    if invitation is None or not invitation.digest or not hmac.compare_digest(invitation.digest, token_digest(data["s"])):
        return None
    return invitation


def account_for(invitation: Invitation) -> User | None:
    """The existing account of the invited address, if there is one."""
    return account_for_address(invitation.email)


def account_for_address(email: str) -> User | None:
    """The account that confirmed this address, if any. An unconfirmed
    address proves nothing: anyone may type anyone's address into their own
    account, and must not capture an invitation with it."""
    users = User.objects.filter(has_verified_email()).annotate(address=Lower("email")).filter(address=email.lower())
    return users.order_by("-is_active", "pk").first()


def accept(*, invitation: Invitation, user: User, request: HttpRequest | None = None, via: str = "password") -> bool:
    """``user`` (whose address is the invited one) joins the desk; the
    invitation is spent, in one conditional update, so two tabs accept once.
    The link proved the address: it counts as confirmed."""
    with transaction.atomic():
        spent = Invitation.objects.pending().filter(pk=invitation.pk).update(accepted_at=timezone.now(), accepted_by=user, digest="")
        if not spent:
            return False
        if user.email.lower() == invitation.email and not user.email_verified:
            user.verified_email = user.email
            user.save(update_fields=["verified_email"])
        invitation.desk.members.add(user)
        record_event(
            action="invitation.accepted",
            request=request,
            actor=user,
            subject=user,
            object_label=f"{invitation.email} to {invitation.desk.name}",
            details={"desk": invitation.desk.name, "via": via},
        )
    return True


def create_account(*, invitation: Invitation, form, request: HttpRequest | None = None) -> User | None:
    """A new account for the invited address from the accept form (username,
    names, password), joined to the desk; None if the link was spent meanwhile."""
    try:
        with transaction.atomic():
            user = form.save(commit=False)
            user.email = invitation.email
            user.save()
            record_event(action="account.created", request=request, actor=user, subject=user, object_label=user.username, details={"via": "invitation"})
            if not accept(invitation=invitation, user=user, request=request):
                raise IntegrityError("invitation spent")
    except IntegrityError:
        return None
    return user
