"""Sign-in beyond the password and the code: enrolment codes after an MFA
reset, trusted browsers, known browsers and new-browser alerts.

Imports no other accounts service module: accounts.services calls in here
(a password or factor change voids trust), never the other way round.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .audit import record_event
from .models import EnrolmentCode, RecoveryCodeDevice, User, format_code, token_digest

# --- Enrolment codes after an MFA reset ----------------------------------------


def enrolment_code_issue(*, trader: User, by: User) -> str:
    """A new one-time enrolment code for ``trader`` (any older one is
    replaced); returns it formatted, to be shown to the lead once. 80 random
    bits, like a backup code, in the same unambiguous alphabet."""
    code = RecoveryCodeDevice.new_code()
    now = timezone.now()
    with transaction.atomic():
        EnrolmentCode.objects.filter(user=trader).delete()
        EnrolmentCode.objects.create(
            user=trader, code_hash=token_digest(code), created_by=by, created_at=now, expires_at=now + EnrolmentCode.LIFETIME
        )
    return format_code(code)


def enrolment_code_for(user: User) -> EnrolmentCode | None:
    """The unused enrolment code a first enrolment must present, if any."""
    return EnrolmentCode.objects.filter(user=user, used_at__isnull=True).first()


def enrolment_pending(user: User) -> bool:
    """Whether a reset left a code that can still be used: no second reset
    is offered meanwhile."""
    row = enrolment_code_for(user)
    return row is not None and row.pending


ENROL_CODE_SESSION = "gatecheck_enrolment_code"


def enrolment_code_accepted(request, row: EnrolmentCode) -> None:
    """The code was right: this pending sign-in (and only it) may enrol."""
    request.session[ENROL_CODE_SESSION] = row.pk
    record_event(action="mfa.enrolment_code_accepted", request=request, object_label=request.user.username)


def enrolment_gate_open(request) -> bool:
    """Whether this session may show the enrolment page: no code is owed,
    or this session presented it."""
    row = enrolment_code_for(request.user)
    return row is None or request.session.get(ENROL_CODE_SESSION) == row.pk


def enrolment_code_consume(request) -> None:
    """After the new authenticator is confirmed: the code is spent."""
    row_id = request.session.pop(ENROL_CODE_SESSION, None)
    if row_id:
        EnrolmentCode.objects.filter(pk=row_id, used_at__isnull=True).update(used_at=timezone.now())
