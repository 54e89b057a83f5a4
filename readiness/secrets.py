"""Recognise text that looks like a credential, so that it is never stored.

Gatecheck records *where* secrets live, never the secrets themselves. Every
free-text field (names, labels, notes, contacts, feed names, reasons) goes
through :func:`find_secret`, in the forms and in the inventory importer.

Detection follows what a secret *is* rather than a list of examples:

* a well-known shape or prefix (AWS, GitHub, GitLab, Slack, Stripe, Google,
  Twilio, SendGrid, npm, PyPI, OpenAI, JWT, PEM blocks, otpauth links,
  credentials inside a URL, Authorization headers), after the gitleaks,
  detect-secrets and trufflehog rule sets;
* a word that announces a secret, in several languages ("password",
  "Passwort", "mot de passe", "contraseña", "PIN", "token", ...), followed by
  a value, whether written as ``key=value`` or in prose;
* a long run of key characters (hex, base32, base64, digits) that does not
  read like words, after joining the groups it was split into (spaces,
  dashes, underscores, mixed case);
* lists of backup codes, and single words shaped like a password.

Identifiers that are long but public (ISINs and IBANs with a valid check
digit, IP addresses) are recognised and left alone.

The checks err on the side of refusing: a false alarm costs the trader a
rewording, a miss puts a broker credential in our database and backups.
It imports no Django: the form mixin that uses it lives in ``accounts.forms``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter

NEVER_STORED = "Gatecheck never stores secrets: describe where it is kept instead (for example 'in the desk safe')."
FINGERPRINT_MAX = 4

# A run of key characters at least this long is examined for randomness: 16
# characters of base32 carry 80 bits, of hex 64 bits.
TOKEN_MIN_LENGTH = 16
# All digits: no phone number (15 digits at most, E.164) or date is this long.
DIGITS_MIN_LENGTH = 16

KEY_SHAPE = "a key or token in a well-known format"
WRITTEN_OUT = "a password, token or key written out"
CODES = "a backup code or authenticator seed"
RANDOM = "a long random token, like an API secret"
PASSWORD_SHAPE = "a password"

# --- Well-known shapes -----------------------------------------------------------

_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern))
    for reason, pattern in (
        ("a private key or certificate block", r"-----BEGIN[A-Z0-9 ]*(?:PRIVATE KEY|CERTIFICATE|KEY BLOCK)[A-Z0-9 ]*-----"),
        ("an authenticator (otpauth://) link", r"(?i)otpauth(?:-migration)?://"),
        (WRITTEN_OUT, r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"),
        (WRITTEN_OUT, r"(?i)\b[a-z][a-z0-9+.-]*://[^\s:/@]+:[^\s/@]+@"),  # user:password@host
        (KEY_SHAPE, r"\b(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"),  # AWS key id
        (KEY_SHAPE, r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub tokens
        (KEY_SHAPE, r"\bgithub_pat_[A-Za-z0-9_]{40,}"),
        (KEY_SHAPE, r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
        (KEY_SHAPE, r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack
        (KEY_SHAPE, r"hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}"),
        (KEY_SHAPE, r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"),  # Stripe
        (KEY_SHAPE, r"\bwhsec_[A-Za-z0-9]{20,}"),
        (KEY_SHAPE, r"\bAIza[A-Za-z0-9_-]{35}"),  # Google API key
        (KEY_SHAPE, r"\bya29\.[A-Za-z0-9_-]{20,}"),  # Google OAuth access token
        (KEY_SHAPE, r"\bGOCSPX-[A-Za-z0-9_-]{20,}"),
        (KEY_SHAPE, r"\b(?:SK|AC)[0-9a-fA-F]{32}\b"),  # Twilio
        (KEY_SHAPE, r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),  # SendGrid
        (KEY_SHAPE, r"\bnpm_[A-Za-z0-9]{36}\b"),
        (KEY_SHAPE, r"\bpypi-[A-Za-z0-9_-]{50,}"),
        (KEY_SHAPE, r"\bsk-(?:proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"),  # OpenAI, Anthropic
        (KEY_SHAPE, r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b"),  # Shopify
        (KEY_SHAPE, r"\bdop_v1_[a-f0-9]{64}\b"),  # DigitalOcean
        (KEY_SHAPE, r"\bhv[sb]\.[A-Za-z0-9_-]{20,}"),  # HashiCorp Vault
        (KEY_SHAPE, r"\bdapi[a-h0-9]{32}\b"),  # Databricks
        (KEY_SHAPE, r"\bPMAK-[a-f0-9]{24}-[a-f0-9]{34}\b"),  # Postman
        (KEY_SHAPE, r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b"),
        (KEY_SHAPE, r"\b[0-9]{8,10}:AA[A-Za-z0-9_-]{33}\b"),  # Telegram bot
        (KEY_SHAPE, r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWT
        (KEY_SHAPE, r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"),  # UUID-shaped keys
    )
)

# --- Words that announce a secret ------------------------------------------------

# Credential words in English, German, French, Spanish, Portuguese, Italian,
# Dutch, the Nordic languages, Polish, Czech, Turkish, Finnish, Hungarian,
# Russian, Greek, Chinese, Japanese and Korean.
_ANNOUNCE = (
    r"pass(?:word|wort|wd|phrase|code|ord|wd)?|pwd|pw|pword|kennwort|mot\s+de\s+passe|mdp|contrase(?:ñ|n)a|clave|"
    r"senha|palavra[- ]passe|parola\s+d'ordine|wachtwoord|l(?:ö|o)senord|adgangskode|salasana|has(?:ł|l)o|heslo|"
    r"jelsz(?:ó|o)|(?:ş|s)ifre|пароль|κωδικός|密码|密碼|パスワード|비밀번호|"
    r"pin(?:[- ]?code)?|geheimzahl|secret|secreto|geheimnis|"
    r"(?:api|access|secret|private|client|app|auth)[ _-]?(?:key|secret|token)|apikey|cl(?:é|e)\s+api|"
    r"(?:access|refresh|auth|session|bearer)[ _-]?token|token|"
    r"seed|otp|totp|2fa[ _-]?code|(?:backup|recovery|security|verification|auth)[ _-]?codes?|"
    r"codes?\s+de\s+(?:secours|r(?:é|e)cup(?:é|e)ration)|sicherungscodes?|wiederherstellungscodes?|c(?:ó|o)digos?\s+de\s+respaldo"
)
_ASSIGNMENT = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{_ANNOUNCE})\s*[:=]\s*\S")
_ANNOUNCED = re.compile(rf"(?i)(?<![A-Za-z0-9])(?:{_ANNOUNCE})(?![A-Za-z0-9])((?:\s+\S+){{1,4}})")
# Words that may stand between the announcing word and the value: fillers,
# and links that say the value comes next ("is", "ist", "est", ...).
_FILLERS = {"now", "set", "to", "be", "of", "for", "the", "my", "our", "new", "current"}
_CONNECTORS = {
    "is", "was", "are", "reads", "ist", "lautet", "war", "jetzt", "sind", "est", "était", "etait", "c'est", "es", "era", "é", "è", "e",
    "è:", "är", "er", "jest", "je", "это", "είναι", "-", "—", "–", "→", "->",
}
# Ordinary words after a credential word: then it is prose about the secret,
# not the secret ("password manager", "the PIN is in the safe").
_STOPWORDS = {
    "in", "on", "at", "with", "by", "from", "under", "inside", "behind", "into", "not", "never", "only", "also",
    "still", "same", "and", "or", "no", "none", "n/a", "empty", "blank", "unknown", "known", "it", "its", "this",
    "that", "their", "his", "her", "your", "a", "an", "kept", "stored", "saved", "written", "held", "printed",
    "managed", "locked", "sealed", "shared", "needed", "required", "changed", "reset", "rotated", "expired",
    "expires", "expiry", "manager", "vault", "safe", "envelope", "card", "sheet", "list", "book", "refresh",
    "rotation", "policy", "change", "sent", "via", "app", "generator", "printed,", "holder", "used", "pad",
    "im", "auf", "bei", "der", "die", "das", "mein", "nicht", "unter", "beim", "geändert", "gespeichert",
    "dans", "sur", "le", "la", "les", "mon", "ma", "pas", "chez", "changé", "en", "el", "mi", "guardada",
    "cambiada", "round", "phrase", "stick", "key", "keys", "file", "reader", "login", "entry", "hint",
    "location", "reminder", "regenerated", "renewed", "revoked", "issued", "created", "applicable",
}
_QUOTED = re.compile(r"""^["'«“‘].+["'»”’]$""")

# --- Runs of key characters ----------------------------------------------------------

_WORD_STRIP = "\"'()[]{}<>,;!?«»“”‘’"
_ALNUM_PIECES = re.compile(r"[A-Za-z0-9]+")
_BASE64_WORD = re.compile(r"^[A-Za-z0-9+/=_-]+$")
_CAMEL = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_VOWELS = set("aeiouyAEIOUY")
_PASSWORD_SYMBOLS = set("!#$%^&*?~|\\`§")
_WINDOWS_PATH = re.compile(r"^(?:[A-Za-z]:|\\\\[^\\]+)\\[^\\]*\\")  # C:\Users\…, \\server\share\…
_EIGHT_DIGITS = re.compile(r"(?<![\d.:/-])(\d{4})[ -]?(\d{4})(?![\d.:/-])")
_ISIN = re.compile(r"\b[A-Z]{2}[A-Z0-9]{9}\d\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")


def _isin_valid(code: str) -> bool:
    digits = "".join(str(int(ch, 36)) for ch in code)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n // 10 + n % 10
    return total % 10 == 0


def _iban_valid(code: str) -> bool:
    compact = code.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _without_public_identifiers(text: str) -> str:
    """Blank out long identifiers that are public by design."""
    text = _IBAN.sub(lambda m: " " if _iban_valid(m.group(0)) else m.group(0), text)
    text = _ISIN.sub(lambda m: " " if _isin_valid(m.group(0)) else m.group(0), text)
    words = []
    for word in text.split():
        try:
            ipaddress.ip_address(word.strip(_WORD_STRIP))
        except ValueError:
            words.append(word)
    return " ".join(words)


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _wordlike(segment: str) -> bool:
    """A letter segment that reads like a word (or a part of one): enough
    vowels, and no long consonant cluster."""
    if len(segment) < 3:
        return False
    lower = segment.lower()
    vowels = sum(ch in _VOWELS for ch in lower)
    if vowels / len(lower) < 0.25:
        return False
    # German compounds reach seven consonants in a row ("Rechtsschutz").
    longest = max((len(run) for run in re.findall(r"[^aeiouy]+", lower)), default=0)
    return longest <= 7


def _looks_random(run: str) -> bool:
    """A run of letters and digits that a person did not write as words."""
    if len(run) < TOKEN_MIN_LENGTH:
        return False
    if run.isdigit():
        return len(run) >= DIGITS_MIN_LENGTH
    if len(set(run)) < 6 or _entropy(run) < 3.0:
        return False  # "xxxxxxxxxxxxxxxxxxxx", "abababab..." are placeholders
    letters = sum(ch.isalpha() for ch in run)
    digits = len(run) - letters
    if re.fullmatch(r"[0-9a-f]+|[0-9A-F]+", run) and digits >= 2 and letters >= 2:
        return True  # hex key or digest
    if letters <= 3:
        return digits >= DIGITS_MIN_LENGTH - 2
    if len(run) >= 24 and digits and _case_switches(run) >= 10:
        return True  # the case churn of base64, even when parts read like words
    segments = _CAMEL.findall(run)
    wordy = sum(len(s) for s in segments if s[0].isalpha() and _wordlike(s))
    return wordy / letters < 0.5


def _case_switches(run: str) -> int:
    letters = [ch for ch in run if ch.isalpha()]
    return sum(1 for a, b in zip(letters, letters[1:], strict=False) if a.isupper() != b.isupper())


def _candidates(text: str) -> list[str]:
    """Runs of key characters to examine: each alphanumeric piece, each word
    with its dashes, underscores and base64 signs taken out, and groups of
    one length written apart (``JBSW Y3DP EHPK 3PXP``, ``9f86d081 884c7d65``)."""
    runs: list[str] = []
    words = [w.strip(_WORD_STRIP) for w in text.split()]
    for word in words:
        pieces = _ALNUM_PIECES.findall(word)
        runs.extend(pieces)
        if len(pieces) > 1 and (_BASE64_WORD.match(word) or "@" in word):
            runs.append("".join(pieces))
    runs.extend(_uniform_groups(words))
    return runs


def _uniform_groups(words: list[str]) -> list[str]:
    """Consecutive words of 3 to 8 letters or digits, all of one length but
    the last, joined: a seed or key written in groups."""
    joined, group = [], []
    for word in [*words, ""]:
        plain = word
        fits = plain.isascii() and plain.isalnum() and 3 <= len(plain) <= 8
        if fits and group and len(group[-1]) == len(group[0]) and len(plain) <= len(group[0]):
            group.append(plain)
            continue
        if len(group) >= 2:
            joined.append("".join(group))
        group = [plain] if fits else []
    return joined


def _assigned_value(text: str) -> bool:
    """``password: …``, unless what follows is prose that says where it is or
    that there is none (``Password: stored in 1Password``, ``Seed: not
    applicable``): it starts with an ordinary word and holds nothing shaped
    like a value (``Password: hint: hunter2``, ``PIN: card 4821`` do)."""
    for match in _ASSIGNMENT.finditer(text):
        words = text[match.end() - 1 :].split()[:8]
        if words[0].strip(".,;:!?)(").lower() not in _STOPWORDS:
            return True
        for before, word in zip(words, words[1:], strict=False):
            if _value_shaped(word) or (before.lower() in _CONNECTORS and word.strip(".,;!?)(").isalpha()):
                return True
    return False


_BRAND = re.compile(r"^\d+[A-Z][a-z]+$")  # "1Password": a name, not a value


def _value_shaped(word: str) -> bool:
    """A word in prose that looks like a secret's value: four digits or more,
    letters mixed with digits (not a name like 1Password), or a password's mix."""
    value = word.strip("\"'()[]{}<>,;.:!?")
    if value.isdigit():
        return len(value) >= 4
    mixed = any(ch.isdigit() for ch in value) and any(ch.isalpha() for ch in value)
    return (mixed and not _BRAND.match(value)) or _password_shaped(value)


_TOKEN_WORD = re.compile(r"(?i)\btoken\s+([A-Za-z0-9._~+/=-]{8,})")


def _token_value(text: str) -> bool:
    """``token`` and a long run after it, unless the run is a plain
    lower-case word (``token rotation``)."""
    for match in _TOKEN_WORD.finditer(text):
        run = match.group(1)
        if not (run.isalpha() and run[1:].islower() and _wordlike(run)):
            return True
    return False


def _announced_value(text: str) -> bool:
    """A credential word followed, in prose, by what looks like its value."""
    for match in _ANNOUNCED.finditer(text):
        tokens = match.group(1).split()
        connected = False
        for token in tokens:
            if token.lower() in _FILLERS:
                continue
            # "ES" (a ticker) is not the Spanish "es".
            if token.lower() in _CONNECTORS and not token.isupper():
                connected = True
                continue
            value = token.strip(".,;:!?)(")
            if not any(ch.isalnum() for ch in value):
                break  # an emoji or a dash is no value
            if _QUOTED.match(token):
                return True
            if value.lower() in _STOPWORDS:
                break
            mixed_case = any(ch.isupper() for ch in value[1:]) and any(ch.islower() for ch in value)
            if any(ch.isdigit() for ch in value) or any(not ch.isalnum() for ch in value) or mixed_case:
                return True
            if connected and value.isalpha():
                return True
            break
    return False


def _password_shaped(word: str) -> bool:
    """A single word mixing letters, digits and symbols, as passwords are made."""
    word = word.strip("\"'()[]{}<>,;.")
    if not 8 <= len(word) <= 64 or "@" in word or "://" in word:
        return False
    if _WINDOWS_PATH.match(word):  # a path is no password, but a file in it may be named like one
        return any(_password_shaped(part) for part in word.split("\\")[1:])
    return (
        any(ch in _PASSWORD_SYMBOLS for ch in word)
        and any(ch.isalpha() for ch in word)
        and any(ch.isdigit() for ch in word)
    )


def _backup_code_list(text: str) -> bool:
    """Two or more 8-digit codes (``1234 5678``, ``12345678``) that are not dates."""
    codes = []
    for first, second in _EIGHT_DIGITS.findall(text):
        code = first + second
        year, month, day = int(code[:4]), int(code[4:6]), int(code[6:])
        if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
            codes.append(code)
    return len(codes) >= 2


def find_secret(text: str) -> str | None:
    """Why ``text`` looks like a credential, or None when it does not.

    The reason never quotes the text, so it is safe to show and to log.
    """
    if not text or not text.strip():
        return None
    for reason, pattern in _SHAPES:
        if pattern.search(text):
            return reason
    if _assigned_value(text) or _announced_value(text) or _token_value(text):
        return WRITTEN_OUT
    examined = _without_public_identifiers(text)
    if _backup_code_list(examined):
        return CODES
    for run in _candidates(examined):
        if _looks_random(run):
            return CODES if run.isupper() or run.islower() or run.isdigit() else RANDOM
    if any(_password_shaped(word) for word in examined.split()):
        return PASSWORD_SHAPE
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


MASK = "***"
_WORDS = re.compile(r"(\s+)")


def mask_secrets(text: str) -> str:
    """``text`` with whatever looks like a credential replaced by ``***`` in
    place, the rest kept as written, line breaks included (a bot's ping
    message: "token refreshed, next in 55 min" stays; the value after
    "password:" goes).

    Line by line: a word that is a secret by itself is masked; then, if the
    line still reads as a credential told by its context ("PIN is 4711"),
    the words after each announcing word are masked; and a line that still
    reads as one after that is masked whole.
    """
    return "\n".join(_masked_line(line) for line in text.split("\n"))


def _masked_line(line: str) -> str:
    if find_secret(line) is None:
        return line
    parts = [MASK if part and not part.isspace() and find_secret(part) else part for part in _WORDS.split(line)]
    line = "".join(parts)
    if find_secret(line.replace(MASK, " ")) is None:
        return line
    # Told by its context: mask the value after each announcing word; what
    # is left once each announcement is taken out must read as no secret.
    residue = line
    for match in reversed(list(_ANNOUNCED.finditer(line)) or list(_ASSIGNMENT.finditer(line))):
        if match.re is _ANNOUNCED:
            start, end = match.span(1)
        else:  # "password: value": the value is the word after the sign
            start = match.end() - 1
            end = start + len(line[start:].split(None, 1)[0])
        line = line[:start] + re.sub(r"[^\s:=]\S*", MASK, line[start:end]) + line[end:]
        residue = residue[: match.start()] + " " + residue[end:]
    return line if find_secret(residue.replace(MASK, " ")) is None else MASK
