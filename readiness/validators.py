"""The field rules shared by every form and the inventory importer.

Each rule is a pure function that returns the message to show, or None when
the value is fine, so that a form (accounts.forms, devices.forms,
devices.forms) and the importer (devices.inventory) refuse the same
value with the same words. None of them ever quotes the value: it could be a
secret pasted into the wrong field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime

from .secrets import find_secret, secret_message

# Field limits shared by the form, the importer and the database constraint.
HEARTBEAT_PERIOD_MINUTES = (1, 7 * 24 * 60)  # from a minute to a week
HEARTBEAT_GRACE_MINUTES = (1, 24 * 60)  # from a minute to a day
ACCEPTED_RISK_MAX_DAYS = 90  # a risk is accepted until at most 90 days ahead

FUTURE = "This date is in the future. Enter the day it actually happened."
CONTROL = "This text contains a control character. Remove it and type the text again."
SURROGATE = "This text contains an invalid character (a broken Unicode escape). Type the text again."
BIDI = "This text contains a hidden direction-override character. Type the text again without it."

# C0 and C1 control characters (NUL included: SQLite would store it and
# PostgreSQL refuses it, so both backends refuse it here first), DEL, the
# bidirectional embeddings, overrides and isolates that make a label read
# differently from what it holds (CVE-2021-42574), and lone UTF-16 surrogates,
# which JSON escapes can carry but no database encoding can store.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_BREAKS = re.compile("[\t\n\r]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


_UNSTORABLE = re.compile(f"{_CONTROL.pattern}|{_BIDI.pattern}|{_SURROGATE.pattern}")


def storable_text(value: str) -> str:
    """Text received rather than typed (a bot's ping body), made storable:
    line breaks as ``\\n``, every character ``text_problem`` refuses in
    multi-line text turned into a space."""
    return _UNSTORABLE.sub(" ", value.replace("\r\n", "\n").replace("\r", "\n"))


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None. Tabs and line breaks
    are allowed only in multi-line fields (notes, reasons)."""
    if _SURROGATE.search(value):
        return SURROGATE
    if _CONTROL.search(value) or (not multiline and _LINE_BREAKS.search(value)):
        return CONTROL
    if _BIDI.search(value):
        return BIDI
    return None


def secret_problem(value: str) -> str | None:
    """Why ``value`` looks like a credential, as the message to show, or None."""
    reason = find_secret(value)
    return secret_message(reason) if reason else None


def future_problem(day: date | datetime, today: date | datetime) -> str | None:
    """A date (or moment) that should have happened already may not lie after ``today`` (or now)."""
    return FUTURE if day > today else None


def duplicate_message(noun: str, field: str) -> str:
    article = "an" if noun[:1].lower() in "aeio" else "a"
    return f"You already have {article} {noun} with this {field}. Choose another."


def duplicate_problem(value: object, taken: Iterable[object], *, noun: str, field: str) -> str | None:
    """Names and labels are unique within one owner's list: ``taken`` holds the
    other items' values (the stored rows for a form, the earlier rows of the
    same list for a file)."""
    return duplicate_message(noun, field) if value in set(taken) else None

