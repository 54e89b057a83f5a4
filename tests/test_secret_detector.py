"""The secret detector (readiness/secrets.py) measured on a corpus (SECURITY.md 24).

Secrets: the shapes of published secret-scanner rule sets (gitleaks'
rules and their test examples, detect-secrets' plugins, trufflehog
detectors; every value here is made up), the misses an outside review
reproduced, and passwords and codes as traders write them. Ordinary text:
labels and notes as traders write them (device models, ISINs, IBANs, phone
numbers, addresses, dates, product and feed names), in several languages.
Both rates are measured and held to a threshold; the reproduced misses and a
core of ordinary labels must each hold on their own.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from devices.models import RecoveryMethod
from readiness.secrets import find_secret

# The review's reproduced misses, one per family.
REVIEW_MISSES = [
    "my password is Tr0ub4dor",  # a password after the word "password", in prose
    "the broker password is hunter2, keep it quiet",
    "Das Passwort ist Sommer2024",  # another language
    "mot de passe : soleil-bleu",
    "la contraseña es madrid1987",
    "9f86d081 884c7d65 9a2feaa0 c55ad015",  # a 128-bit hex key split into groups
    "9f86-d081-884c-7d65-9a2f-eaa0-c55a-d015",
    "Xk8fQ2mZp9LwV4tR7yB3@desk",  # a key with an @ in the same word
    "backup@Xk8fQ2mZp9LwV4tR7yB3nC",
    "83749201938475629384",  # a long all-digit token
    "sk_live_51H8xYzAb_CdEf0123_456789QwErTy",  # a live key split by underscores
    "sk_live_51H8x_YzAbCdEf_0123456789_QwErTy",
    "JBSWY3DP EHPK3PXP",  # a base32 seed in 8-character groups
    "JBSWY3DP EHPK3PXP GEZDGNBV GY3TQOJQ",
    "JbSwY3dPeHpK3pXp",  # ... or in mixed case
    "jBsW y3Dp EhPk 3pXp",
    "12345678 87654321 11223344",  # lists of 8-digit backup codes
    "codes: 4821 9930, 1192 8837, 7720 1184",
    "48219930, 11928837",
]

# Shapes from gitleaks / detect-secrets / trufflehog rules (fake values).
SCANNER_SHAPES = [
    "AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "ASIAY34FZKBOKMUTVV7A",
    "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",
    "gho_16C7e42F292c6912E7710c838347Ae178B4a",
    "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV",
    "glpat-8aMzXnX9cRhbL1VcQwQk",
    "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "xoxp-123456789012-123456789012-123456789012-0123456789abcdef0123456789abcdef",
    "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "sk_live_51H8xYzAbCdEf0123456789QwErTy",
    "rk_live_51H8xYzAbCdEf0123456789QwErTy",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",
    "ya29.a0AfH6SMBx3kq9lZ2Ydf8Qw0Jk7nL5pR1tU3vX",
    "SK1234567890abcdef1234567890abcdef",
    "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",
    "npm_1234567890abcdefghijABCDEFGHIJ123456",
    "pypi-AgEIcHlwaS5vcmcCJDU3OTM5NjM1LTNlYzItNGE2My1hZjk3LWQxM2Y2YjY2OTVlZQACJXsicGVybWlzc2lvbnMiOiAidXNlciIsICJ2ZXJzaW9uIjogMX0",
    "sk-proj-3Xq9ZkLm2NpQ7rT5vW8yB1cD4fG6hJ0k",
    "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "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",
    "dop_v1_" + "a1b2c3d4" * 8,
    "hvs.CAESIJlWh0hY6iVxJ9k2dM3qT5wR8zN1pL4o",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----",
    "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    "otpauth://totp/IBKR:alice?secret=JBSWY3DPEHPK3PXP&issuer=IBKR",
    "otpauth-migration://offline?data=CjEKCkhlbGxvId6tvu8SGA",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9abc",
    "Basic YWxpY2U6aHVudGVyMg==",
    "postgres://trader:S3cr3tPass@db.internal:5432/prod",
    "https://alice:hunter2@broker.example.com/api",
    "123e4567-e89b-12d3-a456-426614174000",
    "1234567890:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
    "dapi1234567890abcdef1234567890abcdef",
    "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ",
    "api_key = 12345",
    "API_KEY=AbC123xYz789",
    "client_secret: 8Q~f4Gh.Kl9-Zx2Vb7Nm3Lp0Qr5St8Uw1Yz",
    "token=abc123",
    "secret: correct-horse",
    "password=Hunter2Hunter2",
    "pw: hunter2",
    "PIN: 4821",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "9f86d081884c7d659a2feaa0c55ad015",
    "d41d8cd98f00b204e9800998ecf8427e",
]

# As traders would paste or type them.
TYPED = [
    "JBSW Y3DP EHPK 3PXP",
    "jbsw y3dp ehpk 3pxp",
    "JBSWY3DPEHPK3PXP",
    "U7BG6S89DRRBUCRM",
    "u7bg-6s89-drrb-ucrm",
    "ABCD-EFGH-JKLM-NPQR",
    "ABCD-EFGH-JKLM-NPQR-STUV",
    "aBcDeFgHiJkLmNoPqRsTuVwXyZ",
    "Bearer eyJhbGciOiJIUzI1NiJ9",
    "IBKR pw Tr4d3r!2026",
    "password hunter2",
    "passcode 739155",
    "Passwort: Geheim123",
    "Kennwort lautet Frankfurt99",
    "wachtwoord: zomer2024",
    "senha é amor1234",
    "hasło: kot12345",
    "пароль: qwerty123",
    "密码: abc12345",
    "PIN 4821 for the SIM",
    "SIM PIN is 0000",
    "backup codes 4821-9930 1192-8837",
    "recovery code: ZX8K-P2QM-7TNV-4LHB",
    "seed: JBSWY3DPEHPK3PXP",
    "token: 5f4dcc3b5aa765d61d8327deb882cf99",
    "api key X7fj29Qp",
    "the secret is 'blue falcon'",
    'password "correcthorse"',
    "Tr4d3r!2026",
    "Summer#2024trade",
    "Xk8fQ2mZp9LwV4tR7yB3nC",
    "8f14e45fceea167a5a36dedd4bea2543",
    "MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPIQGA",
    "a8Fk29XcQ7mZp3LwV5tR@gmail.com",
    "4111 1111 1111 1111",
    "my key is AKIAJ7Q2LMNOPQRSTU3V",
    "secret=Zm9vYmFyYmF6cXV4",
    "Yubikey OTP ccccccjlkhvbriutdfjhtvdrnlnbjcjvbfhuuruttgtb",
    # Added after tuning, as a check on over-fitting.
    "heroku api key 3f8a1c2e-4b5d-4e6f-8a9b-0c1d2e3f4a5b",
    "Alpaca key PKZ4QX7R2N8M1LTV5W9Y",
    "binance secret NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j",
    "mailgun key-3ax6xnjp29jd6fds4gc373sgvjxteol0",
    "discord token MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.MnOpQrStUvWxYzAbCdEfGhIjKlMnOpQrStUvWx",
    "square EAAAEOuLQObrVwJvCvoio3H13b8Ssqz1ighmTBKZvIENW9qxirHGHkqsGcPBC1uN",
    "my pin: 2580",
    "Geheimzahl 4711",
    "login: alice / Trading2026!",
    "contrasena: Barcelona2026",
]

ORDINARY = [
    # Devices and products.
    "Office workstation",
    "iPhone15ProMax256",
    "IBKR Mobile on iPhone 15 Pro",
    "IB Key on iPhone 15 Pro",
    "YubiKey 5C NFC (blue keyring)",
    "YubiKey 5 NFC",
    "MacBook Pro 14 M3 Max",
    "MacBookPro18,3",
    "ThinkPad X1 Carbon Gen 11",
    "Dell Latitude 7440",
    "Samsung Galaxy S24 Ultra (SM-S928B)",
    "Pixel 8 Pro",
    "Surface Pro 9 for travel",
    "iPad Air 5th gen",
    "Trader Workstation (TWS) 10.30",
    "Client Portal in Chrome 131",
    "Zürich tablet",
    "Home laptop",
    "Bloomberg terminal B-UNIT",
    "Ledger Nano X",
    "InternationalBusinessMachines",
    "Rechtsschutzversicherungsgesellschaften",
    "Datenschutzgrundverordnung notes",
    # Recovery labels, contacts, phone numbers, addresses.
    "+1 212 555 0142",
    "+1 (212) 555-0142",
    "+44 20 7946 0958",
    "+41791234567",
    "+41 79 123 45 67",
    "212-555-0142",
    "+1 212 555 0142 / +1 917 555 0199",
    "desk lead phone",
    "ops pager",
    "alice.backup+trading2026@example.com",
    "alice@example.com",
    "a***@example.com",
    "+1 *** *** 0142",
    "Backup codes printed, in the desk safe",
    "Printed, desk safe",
    "Keep card with desk lead",
    "keep card with desk lead 2026",
    "Secondary SIM in the drawer",
    "Password manager holds it; ask the desk lead",
    "The password is in the office safe",
    "Passwort im Tresor, Schlüssel bei Frau Meier",
    "Mot de passe dans le coffre du bureau",
    "La contraseña está en el gestor de contraseñas",
    "PIN pad on desk 12",
    "Token refresh every 24h",
    "token refresh handled by the gateway",
    "Seed round closed in 2025",
    "Secret Santa gift list",
    "API key for the ES spread bot",
    "API key rotated on 2026-10-01",
    "Recovery codes stored in 1Password",
    "OTP app on the old phone",
    # Identifiers that are long but public.
    "US0378331005",
    "US0378331005 and US5949181045",
    "ISIN DE0007164600 (SAP)",
    "IBAN DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "192.168.100.200",
    "2001:db8:85a3::8a2e:370:7334",
    "Account U1234567",
    "IMEI 356938035643809",
    "Order 20261125-0042",
    # Dates and times.
    "2026-11-25",
    "Validated 2026-11-25 at 09:30",
    "2026-11-25, 2026-12-01",
    "until 31.12.2026",
    "HK positions closed until January",
    # Automations, feeds, reasons.
    "ES spread bot v2",
    "Calendar roller",
    "Vol harvester",
    "algo-futures",
    "options-mm",
    "algo-futures-2026-q4",
    "US equities bundle",
    "US options (OPRA)",
    "HKEX level 1",
    "Eurex Core Level 2 for derivatives",
    "NASDAQ TotalView",
    "Legacy key retires with the old desk",
    "Broker support +1 877 442 2757, 24/7",
    "https://www.interactivebrokers.com/en/support/contact.php",
    "Called IBKR support, ticket 12345678",
    "Lost phone on the train; called back on the desk line",
    "video call, ID checked",
    "Desk #12 laptop",
    "R&D laptop",
    "C++ build box",
    "Wi-Fi router in the server room",
    "Serial C02XK0XXJGH5",
    "MAC 00:1A:2B:3C:4D:5E",
    "Room 4.12, cabinet B",
    "Grid bot (ETH/USDT)",
    # Added after tuning, as a check on over-fitting.
    "Work phone (Android 14, Samsung A54)",
    "Old Nokia 3310 in the drawer",
    "Hardware key on the lanyard",
    "Second YubiKey in the home safe",
    "Mum's landline +49 30 1234567",
    "Backup e-mail: trading.alerts@proton.me",
    "Desk assistant Maria (ext. 4417)",
    "Broker: Interactive Brokers Ireland",
    "Saxo Bank, Copenhagen",
    "LSE Level 2 via Refinitiv",
    "CME Globex top of book",
    "Japan equities (TSE) snapshot",
    "Stop-loss bot for NQ futures",
    "Mean-reversion v3 on EUR/USD",
    "Pairs trader KO/PEP",
    "Rebalancer for the 60/40 book",
    "Notebook in the grey backpack",
    "Kept in the locked drawer under the desk",
    "Clé USB dans le tiroir",
    "Handy im Büro, zweite SIM",
    "Teléfono del trabajo",
    "Tablet met Face ID",
    "Ersatzschlüssel bei der Assistentin",
    "Q4 2026 review with compliance",
    "Trip to Singapore 12-18 March",
    "Windows 11 Pro 23H2 desktop",
    "Linux box, Ubuntu 24.04 LTS",
    "Chromebook for travel only",
    "Apple Watch Series 9",
    "Authenticator app: Microsoft Authenticator",
]


def rate(texts: list[str], *, flagged: bool) -> float:
    return sum(bool(find_secret(t)) == flagged for t in texts) / len(texts)


SECRETS = REVIEW_MISSES + SCANNER_SHAPES + TYPED


@pytest.mark.parametrize("text", REVIEW_MISSES)
def test_every_miss_the_review_reproduced_is_caught(text):
    assert find_secret(text)


@pytest.mark.parametrize(
    "text",
    ["IB Key on iPhone 15 Pro", "US0378331005", "+1 212 555 0142", "alice.backup+trading2026@example.com", "2026-11-25",
     "YubiKey 5C NFC (blue keyring)", "Password manager holds it; ask the desk lead", "Token refresh every 24h",
     "iPhone15ProMax256", "Backup codes printed, in the desk safe"],
)
def test_core_ordinary_labels_pass(text):
    assert find_secret(text) is None


def test_detection_rate_on_the_corpus():
    missed = [t for t in SECRETS if not find_secret(t)]
    assert rate(SECRETS, flagged=True) >= 0.97, missed


def test_false_positive_rate_on_the_corpus():
    refused = [t for t in ORDINARY if find_secret(t)]
    assert 1 - rate(ORDINARY, flagged=False) <= 0.02, refused


def test_the_corpus_is_large_enough_to_mean_something():
    assert len(SECRETS) >= 100 and len(ORDINARY) >= 100


def test_the_reason_never_quotes_the_text():
    for text in SECRETS:
        assert text not in find_secret(text)


# The review's misses after the held-out list's fixes: prose after a colon
# that still carries a value, "Basic"/"Bearer" and a long token, a password
# named as a file in a Windows path.
AFTER_FIXES = [
    "Password: hint: hunter2", "Password: it is hunter2", "PIN: card 4821", "Password: login hunter2",
    "Secret: list hunter2", "Password: none yet, use hunter2", "Password: it is sunshine",
    "Authorization: Basic dXNlcjpwYXNz", "Bearer abcdefghijkl", "token ABCDEFGHIJKLMNOP", "C:\\Users\\bob\\Pa$$w0rd1.txt",
]


@pytest.mark.parametrize("text", AFTER_FIXES)
def test_prose_around_a_value_does_not_hide_it(text):
    assert find_secret(text)


# --- The held-out list ----------------------------------------------------------
# tests/data/benign_free_text.txt was written by someone who never read the
# detector or the corpus above, as traders, leads and ops people write
# labels and notes. It measures the detector; it is never tuned: a line
# refused here is a false positive to fix in the detector, not a line to edit.

HELD_OUT = Path(__file__).parent / "data" / "benign_free_text.txt"


def _held_out() -> list[str]:
    lines = HELD_OUT.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("# ")]


def test_the_held_out_list_is_substantial():
    assert len(_held_out()) >= 150


@pytest.mark.parametrize("text", _held_out())
def test_held_out_benign_text_is_never_refused(text):
    assert find_secret(text) is None


@pytest.mark.django_db
def test_a_password_manager_named_in_a_note_is_saved(alice, alice_client):
    """The red team's false positive, through the form a trader uses."""
    note = "Password manager: 1Password vault 'Trading'"
    response = alice_client.post("/recovery/add/", {"kind": "backup_codes", "label": note, "last_verified_on": date.today().isoformat()})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert RecoveryMethod.objects.get(owner=alice).label == note
    assert "1Password vault" in alice_client.get("/recovery/").content.decode()
