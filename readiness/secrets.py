"""Recognise text that looks like a credential, so that it is never stored.

Gatecheck records *where* secrets live, never the secrets themselves. Every
free-text field (names, labels, notes, contacts, feed names, reasons) goes
through :func:`find_secret`, in the forms and in the inventory importer.

The checks err on the side of refusing: a false alarm costs the trader a
rewording, a miss puts a broker credential in our database and backups.
It imports no Django: the form validator and the scrubbing mixin that use
it live in ``accounts.forms``.
"""

from __future__ import annotations

import re

NEVER_STORED = "Gatecheck never stores secrets: describe where it is kept instead (for example 'in the desk safe')."
FINGERPRINT_MAX = 4

# key=value / key: value, where the key names a credential.
_ASSIGNMENT = re.compile(
    r"(?i)\b(?:pass(?:word|wd|phrase|code)?|pwd|pw|pin|secret|client[_ -]?secret|token|access[_ -]?token|"
    r"refresh[_ -]?token|api[_ -]?key|apikey|access[_ -]?key|private[_ -]?key|seed|otp|totp|backup[_ -]?codes?)"
    r"\s*[:=]\s*\S"
)
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
_OTPAUTH = re.compile(r"(?i)otpauth(?:-migration)?://")
_BEARER = re.compile(r"(?i)\bbearer\s+\S{8,}")
# Groups of 4-5 upper-case letters or digits, as backup codes are printed
# (ABCD-EFGH-JKLM-NPQR), and TOTP seeds as apps show them (JBSW Y3DP EHPK 3PXP).
_GROUPED_CODES = re.compile(r"\b(?:[A-Z0-9]{4,5}[- ]){3,}[A-Z0-9]{4,5}\b")
# The same typed in lower case. Ordinary words also come in groups of four
# ("keep card with desk lead"), so at least two groups must hold a digit.
_GROUPED_ANY_CASE = re.compile(r"(?i)\b(?:[A-Z0-9]{4,5}[- ]){3,}[A-Z0-9]{4,5}\b")
# A base32 seed or a backup code typed without spaces: one case of letters
# mixed with digits, 16 characters or more (JBSWY3DPEHPK3PXP). Product names
# such as iPhone15ProMax256 mix cases and stay allowed.
_SINGLE_CASE_CODE = re.compile(r"\b(?=[A-Z0-9]*\d[A-Z0-9]*\d)(?=(?:[0-9]*[A-Z]){4})[A-Z0-9]{16,}\b|"
                               r"\b(?=[a-z0-9]*\d[a-z0-9]*\d)(?=(?:[0-9]*[a-z]){4})[a-z0-9]{16,}\b")
# A run of characters that API keys, hex digests, base32 seeds and base64 use.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=]+")
_UUID = re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
TOKEN_MIN_LENGTH = 20


def _case_switches(run: str) -> int:
    letters = [ch for ch in run if ch.isalpha()]
    return sum(1 for a, b in zip(letters, letters[1:], strict=False) if a.isupper() != b.isupper())


def _looks_random(run: str) -> bool:
    """A long run mixing letters and digits, or with the case churn of base64.

    Words, even long or CamelCase ones, rarely have either; generated keys
    almost always have both.
    """
    if len(run) < TOKEN_MIN_LENGTH:
        return False
    has_digit = any(ch.isdigit() for ch in run)
    has_alpha = any(ch.isalpha() for ch in run)
    if has_digit and has_alpha:
        return True
    return has_alpha and _case_switches(run) >= 6


def find_secret(text: str) -> str | None:
    """Why ``text`` looks like a credential, or None when it does not.

    The reason never quotes the text, so it is safe to show and to log.
    """
    if not text:
        return None
    if _PEM.search(text):
        return "a private key or certificate block"
    if _OTPAUTH.search(text):
        return "an authenticator (otpauth://) link"
    if _ASSIGNMENT.search(text) or _BEARER.search(text):
        return "a password, token or key written out"
    if _GROUPED_CODES.search(text) or _SINGLE_CASE_CODE.search(text) or any(
        sum(any(ch.isdigit() for ch in group) for group in re.split(r"[- ]", match.group(0))) >= 2
        for match in _GROUPED_ANY_CASE.finditer(text)
    ):
        return "a backup code or authenticator seed"
    if _UUID.search(text):
        return "a generated key or identifier"
    for word in text.split():
        if "@" in word:
            # E-mail addresses (plus-addressing included) are recovery labels, not keys.
            continue
        if any(_looks_random(run) for run in _TOKEN_RUN.findall(word)):
            return "a long random token, like an API secret"
    return None


def secret_message(reason: str) -> str:
    return f"This looks like {reason}. {NEVER_STORED}"


def fingerprint_problem(value: str) -> str | None:
    """Why a key fingerprint is refused, or None when it is fine."""
    if len(value) > FINGERPRINT_MAX:
        return "looks like a full secret"
    if value and not value.isprintable():
        return "must be printable characters"
    return None
