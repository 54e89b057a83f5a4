"""The one module of test builders: inventory rows, whole traders, and
reading pages by their parsed elements.

``prepared_trader`` gives a trader who passes every rule on ``today``; tests
then break one thing. Everything goes through the ORM, as an import would.
Pages are read with :func:`texts` (the text of the elements with a class),
never by looking for a word anywhere in the HTML: a CSRF token can hold any word.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from datetime import date, datetime, time, timedelta
from html.parser import HTMLParser

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.utils import timezone
from django_otp_webauthn.models import WebAuthnCredential

from accounts.models import Desk, User
from checklist.models import ReadinessSnapshot
from checklist.services import snapshots_store
from devices.models import AcceptedRisk, ApiKey, Automation, Drill, Heartbeat, Permission, RecoveryMethod, Subscription, TradingProfile, TrustedDevice
from readiness import rules
from tests.conftest import make_user


def unverified_user(username: str, **extra) -> User:
    """A user whose e-mail address was never confirmed: no notice, reminder
    or reset link may go to it."""
    return make_user(username, verified=False, **extra)


def device(
    owner, name: str = "Office workstation", *, kind: str = "desktop", platforms=("tws", "client_portal"), validated_on: date | None = None, **extra
) -> TrustedDevice:
    return TrustedDevice.objects.create(
        owner=owner,
        name=name,
        kind=kind,
        platforms=list(platforms),
        validated_on=validated_on if validated_on is not None else timezone.localdate() - timedelta(days=10),
        **extra,
    )


def recovery(owner, kind: str = "phone", label: str = "+1 212 555 0142", *, verified_on: date | None = None) -> RecoveryMethod:
    return RecoveryMethod.objects.create(
        owner=owner, kind=kind, label=label, last_verified_on=verified_on if verified_on is not None else timezone.localdate() - timedelta(days=10)
    )


class SoftPasskey:
    """A software authenticator: a P-256 key whose public half is stored as a
    user's WebAuthnCredential, and which signs the assertions a browser would
    send (``assertion``), so the WebAuthn API can be driven by the test client."""

    def __init__(self, owner, name: str = "Work laptop"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        numbers = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
        self.credential_id = secrets.token_bytes(32)
        self.sign_count = 0
        self.device = WebAuthnCredential.objects.create(
            user=owner, name=name, confirmed=True, credential_id=self.credential_id, public_key=cbor2.dumps(cose), sign_count=0
        )

    def assertion(self, challenge: str, *, origin: str | None = None) -> dict:
        """The browser's answer to the options of authentication/begin."""
        self.sign_count += 1
        rp_hash = hashlib.sha256(settings.OTP_WEBAUTHN_RP_ID.encode()).digest()
        auth_data = rp_hash + bytes([0x05]) + self.sign_count.to_bytes(4, "big")  # user present and verified
        client_data = json.dumps({
            "type": "webauthn.get", "challenge": challenge,
            "origin": origin or settings.OTP_WEBAUTHN_ALLOWED_ORIGINS[0], "crossOrigin": False,
        }).encode()
        signature = self.key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        raw_id = _b64url(self.credential_id)
        return {
            "id": raw_id, "rawId": raw_id, "type": "public-key", "clientExtensionResults": {},
            "response": {"authenticatorData": _b64url(auth_data), "clientDataJSON": _b64url(client_data), "signature": _b64url(signature)},
        }


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def api_key(owner, label: str = "algo-futures", **extra) -> ApiKey:
    today = timezone.localdate()
    values = {
        "scopes": ["read", "trade"],
        "service_account": True,
        "created_on": today - timedelta(days=10),
        "expires_on": today + timedelta(days=60),
        "fingerprint": "7f3a",
        "ip_restricted": True,
    }
    values.update(extra)
    return ApiKey.objects.create(owner=owner, label=label, **values)


def automation(owner, name: str = "ES spread bot", *, key: ApiKey | None = None, **extra) -> Automation:
    values = {"token_refresh": True, "fallback_contact": "desk lead phone", "on_auth_failure": "flatten"}
    values.update(extra)
    return Automation.objects.create(owner=owner, name=name, api_key=key, **values)


def profile(owner, **fields) -> TradingProfile:
    values = {
        "broker_mfa": "ib_key",
        "regions_traded": ["US"],
        "plan_complex_orders": "tws",
        "plan_transfers_statements": "client_portal",
        "plan_alerts_light_execution": "mobile",
        "support_contact": "+1 877 442 2757 (IBKR client services)",
    }
    values.update(fields)
    obj, _ = TradingProfile.objects.update_or_create(owner=owner, defaults=values)
    return obj


def drill(owner, *, minutes: float = 18, day: date | None = None, lost_device: str = "Office workstation", completed: bool = True) -> Drill:
    day = day or timezone.localdate() - timedelta(days=1)
    started = timezone.make_aware(datetime.combine(day, time(9, 0)))
    finished = started + timedelta(minutes=minutes) if completed else None
    return Drill.objects.create(owner=owner, lost_device=lost_device, started_at=started, finished_at=finished, completed=completed)


def prepared_trader(owner) -> None:
    """Everything in place: this trader scores 100 today."""
    device(owner, "Office workstation", kind="desktop", platforms=("tws", "client_portal", "api"))
    device(owner, "iPhone", kind="mobile", platforms=("mobile",))
    recovery(owner, "phone", "+1 555 010 0142")
    recovery(owner, "email", "alice@example.com")
    recovery(owner, "backup_codes", "Printed, in the desk safe")
    key = api_key(owner)
    heartbeat(automation(owner, key=key))
    profile(owner, regions_traded=["US", "HK"], products_traded=["stocks"])
    permission(owner, "stocks", "US")
    permission(owner, "stocks", "HK")
    Subscription.objects.create(owner=owner, region="US", feed="US equities bundle")
    Subscription.objects.create(owner=owner, region="HK", feed="HKEX level 1")
    drill(owner)


def heartbeat(automation: Automation, *, period: int = 5, grace: int = 2, last_kind: str = "success", minutes_ago: float = 1) -> Heartbeat:
    """A heartbeat whose last signal came ``minutes_ago`` (``last_kind`` "" for none yet)."""
    last_at = timezone.now() - timedelta(minutes=minutes_ago) if last_kind else None
    deadline = last_at + timedelta(minutes=period + grace) if last_kind == "success" else None
    return Heartbeat.objects.create(
        owner=automation.owner, automation=automation, period_minutes=period, grace_minutes=grace,
        last_kind=last_kind, last_at=last_at, deadline=deadline, notified="up" if last_kind == "success" else "new",
    )


def stored_score(user, day: date, score: int, level: str, statuses: dict) -> ReadinessSnapshot:
    """A stored daily score written as the app writes one (``snapshots_store``),
    so the trader's current-score row follows; the due dates come from the
    inventory as it is now."""
    row = ReadinessSnapshot(user=user, date=day, score=score, level=level, statuses=statuses)
    snapshots_store([row])
    return ReadinessSnapshot.objects.get(user=user, date=day)


def permission(owner, product: str = "stocks", region: str = "US", *, status: str = "granted", requested_on: date | None = None) -> Permission:
    return Permission.objects.create(owner=owner, product=product, region=region, status=status, requested_on=requested_on)


def subscription(owner, region: str = "US", feed: str = "US equities bundle", *, active: bool = True) -> Subscription:
    return Subscription.objects.create(owner=owner, region=region, feed=feed, active=active)


def accepted_risk(owner, rule: str = "marketdata.covered", *, reason: str = "HK closed", days: int = 30) -> AcceptedRisk:
    return AcceptedRisk.objects.create(owner=owner, rule=rule, reason=reason, until=timezone.localdate() + timedelta(days=days))


def running_drill(owner, *, lost_device: str = "Office workstation") -> Drill:
    # Still running, so that finish and abandon have something to change.
    return Drill.objects.create(owner=owner, lost_device=lost_device, started_at=timezone.now() - timedelta(minutes=5))


# --------------------------------------------------------------------------
# Desks and stored scores
# --------------------------------------------------------------------------

ALL_PASS = {rule.id: "pass" for rule in rules.CATALOG}


def today() -> date:
    return timezone.localdate()


def snapshot(user: User, *, days_ago: int = 0, score: int, **statuses) -> ReadinessSnapshot:
    """A stored score; statuses default to pass, keyword names use _ for dots."""
    merged = {**ALL_PASS, **{key.replace("__", "."): value for key, value in statuses.items()}}
    return stored_score(user, today() - timedelta(days=days_ago), score, rules.level_for(score), merged)


def ready_inventory(user: User, *, phone: str = "+1 555 010 0142", email: str = "alice.home@example.net") -> None:
    """Everything current: nothing overdue or due within 14 days."""
    day = today()
    TrustedDevice.objects.create(
        owner=user,
        name="Office workstation",
        kind="desktop",
        platforms=["tws", "client_portal"],
        validated_on=day - timedelta(days=10),
        notes="Desk 4, under the monitor",
    )
    TrustedDevice.objects.create(owner=user, name="Phone", kind="mobile", platforms=["mobile"], validated_on=day - timedelta(days=10))
    RecoveryMethod.objects.create(owner=user, kind="phone", label=phone, last_verified_on=day - timedelta(days=10))
    RecoveryMethod.objects.create(owner=user, kind="email", label=email, last_verified_on=day - timedelta(days=10))
    RecoveryMethod.objects.create(owner=user, kind="backup_codes", label="Printed card", last_verified_on=day - timedelta(days=10))
    start = timezone.now() - timedelta(days=5)
    Drill.objects.create(owner=user, lost_device="Phone", started_at=start, finished_at=start + timedelta(minutes=20), completed=True)
    TradingProfile.objects.create(
        owner=user,
        broker_mfa="ib_key",
        regions_traded=["US"],
        plan_complex_orders="tws",
        plan_transfers_statements="client_portal",
        plan_alerts_light_execution="mobile",
    )
    Subscription.objects.create(owner=user, region="US", feed="US equities bundle")


def lead_of(desk_name: str, lead_name: str, *members: User) -> User:
    lead = make_user(lead_name)
    desk = Desk.objects.create(name=desk_name)
    desk.leads.add(lead)
    desk.members.add(*members)
    return lead


# --------------------------------------------------------------------------
# Reading pages
# --------------------------------------------------------------------------

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _ClassText(HTMLParser):
    """Collects the text of every element carrying a CSS class (nested ones included)."""

    def __init__(self, css_class: str):
        super().__init__()
        self.css_class = css_class
        self.open: list[tuple[int, list[str]]] = []  # (depth, parts) of matched elements
        self.depth = 0
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        self.depth += 1
        classes = (dict(attrs).get("class") or "").split()
        if self.css_class in classes:
            self.open.append((self.depth, []))

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        while self.open and self.open[-1][0] == self.depth:
            _, parts = self.open.pop()
            self.found.append(" ".join("".join(parts).split()))
        self.depth -= 1

    def handle_data(self, data):
        for _, parts in self.open:
            parts.append(data)


def texts(html: str | bytes, css_class: str) -> list[str]:
    """The whitespace-normalised text of each element with ``css_class``, in document order of their ends."""
    parser = _ClassText(css_class)
    parser.feed(html.decode() if isinstance(html, bytes) else html)
    return parser.found


def body(response) -> str:
    """A response's text, streamed (the CSV export) or not."""
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def page_texts(response, css_class: str) -> list[str]:
    return texts(response.content, css_class)


def no_glyph(text: str) -> str:
    """A tag's text without its leading glyph (``✕ Fail`` -> ``Fail``)."""
    return re.sub(r"^[^\w(]+\s+", "", text)


def list_rows(html: str | bytes) -> list[dict[str, object]]:
    """The rows of an inventory list page: each item's name, status tag and finding texts."""
    text = html.decode() if isinstance(html, bytes) else html
    rows = []
    for chunk in re.split(r'(?=<li class="row inv-row)', text)[1:]:
        rows.append(
            {
                "name": texts(chunk, "inv-name")[0],
                "tag": [no_glyph(t) for t in texts(chunk, "row-tag")][:1],
                "findings": texts(chunk, "finding-text"),
            }
        )
    return rows


def section_findings(html: str | bytes) -> list[str]:
    """The findings shown above a list: what the section is missing."""
    text = html.decode() if isinstance(html, bytes) else html
    blocks = texts(text, "section-findings")
    if not blocks:
        return []
    start = text.index('section-findings')
    end = text.index("</div>", start)
    return texts(text[start - 100 : end], "finding-text")


# --------------------------------------------------------------------------
# Every page a trader and their lead read
# --------------------------------------------------------------------------

TRADER_PAGES = (
    "/", "/devices/", "/recovery/", "/keys/", "/automations/", "/subscriptions/", "/drills/", "/profile/",
    "/risks/", "/recovery-card/", "/accounts/security/", "/api/readiness/", "/api/inventory/",
    "/inventory/export/", "/inventory/import/",
)


def trader_pages(owner) -> list[str]:
    """The trader's own pages, each item's edit and drill page included."""
    pages = list(TRADER_PAGES)
    pages += [f"/devices/{pk}/edit/" for pk in TrustedDevice.objects.for_owner(owner).values_list("pk", flat=True)]
    pages += [f"/recovery/{pk}/edit/" for pk in RecoveryMethod.objects.for_owner(owner).values_list("pk", flat=True)]
    pages += [f"/keys/{pk}/edit/" for pk in ApiKey.objects.for_owner(owner).values_list("pk", flat=True)]
    pages += [f"/automations/{pk}/edit/" for pk in Automation.objects.for_owner(owner).values_list("pk", flat=True)]
    pages += [f"/subscriptions/{pk}/edit/" for pk in Subscription.objects.for_owner(owner).values_list("pk", flat=True)]
    pages += [f"/drills/{pk}/" for pk in Drill.objects.for_owner(owner).values_list("pk", flat=True)]
    return pages


def lead_pages(trader) -> list[str]:
    """What a desk lead reads about ``trader``: the desk page, its CSV and the trader's page."""
    return ["/desk/", "/desk/export.csv", f"/desk/traders/{trader.pk}/"]
