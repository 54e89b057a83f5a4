"""Masked display of phone numbers and e-mail addresses in recovery labels.

Everyone except the owner, on their own edit form, sees the masked form:
``+1 *** *** 0142`` and ``a***@example.com``. Masking is idempotent, so a
label stored already masked (as in an imported file) shows unchanged.
"""

from __future__ import annotations

import re

# A phone number: optional +, a digit, then digits, spaces, dots, dashes,
# brackets or stars (stars so that masked numbers are recognised again).
_PHONE = re.compile(r"\+?\(?\d[\d\s().*-]{5,}\d")
_EMAIL = re.compile(r"([A-Za-z0-9._%+*-]+)@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Country codes of one digit (NANP, Russia/Kazakhstan); most others have two.
_ONE_DIGIT_CODES = {"1", "7"}


def mask_phone(number: str) -> str:
    """``+1 (212) 555-0142`` -> ``+1 *** *** 0142``; keeps the country code and the last 4 digits."""
    digits = re.sub(r"\D", "", number)
    last4 = digits[-4:]
    if not number.lstrip().startswith("+"):
        return f"*** *** {last4}"
    groups = re.findall(r"\d+", number)
    if len(groups) > 1 and len(groups[0]) <= 3:
        country = groups[0]
    else:
        # Written without separators: guess the code's length from its first digit.
        country = digits[:1] if digits[:1] in _ONE_DIGIT_CODES else digits[:2]
    return f"+{country} *** *** {last4}"


def mask_email(address: str) -> str:
    """``alice@example.com`` -> ``a***@example.com``."""
    match = _EMAIL.fullmatch(address.strip())
    if not match:
        return address
    local, domain = match.groups()
    return f"{local[:1]}***@{domain}"


def mask_label(kind: str, label: str) -> str:
    """A recovery-method label as anyone but its owner's edit form shows it.

    Phone numbers and e-mail addresses are masked wherever they occur in the
    label, whatever the kind, since a "secondary device" label can hold a
    number too. ``kind`` is kept in the signature for kinds that may need
    their own rule later.
    """
    masked = _EMAIL.sub(lambda m: mask_email(m.group(0)), label)
    return _PHONE.sub(_mask_phone_match, masked)


def _mask_phone_match(match: re.Match) -> str:
    text = match.group(0)
    # Short digit runs ("YubiKey 5", "desk 12") are not numbers anyone can call.
    if sum(ch.isdigit() for ch in text) >= 6 or "*" in text:
        return mask_phone(text)
    return text


_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+*-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE_IN_TEXT = re.compile(r"\+?\(?\d[\d ().*-]{5,}\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def mask_text(value: str) -> str:
    """Mask every e-mail address and phone number inside free text (rule
    reasons, contacts, audit labels) with the helpers above.

    Unlike a recovery label, free text is full of ISO dates, which are left alone.
    """

    def phone(match: re.Match[str]) -> str:
        text = match.group(0)
        # "(2026-12-02" in a reason is a date in brackets, not a number.
        if _ISO_DATE.fullmatch(text.strip(" ()")) or sum(ch.isdigit() for ch in text) < 7:
            return text
        return mask_phone(text)

    value = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), value)
    return _PHONE_IN_TEXT.sub(phone, value)
