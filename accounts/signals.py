"""What the accounts app announces, so that higher apps can react without
accounts importing them (imports run core <- accounts <- devices <- checklist <- desk)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``user`` after a password change or reset, a factor change or an
# MFA reset: every other credential the user holds must stop working.
access_revoked = Signal()

# Sent with ``user``, ``by`` (or None) and ``desks`` (the desks they were a
# member of) once a person is deactivated and their access is gone
# (accounts.offboarding): the apps that hold their bots and desks react.
user_deactivated = Signal()
