"""Time the desk page at 500 traders and the trader dashboard, as ratios to
a bare view measured in the same run (``make bench``).

Absolute times on these shared machines vary from run to run; the ratio to a
view that does nothing, behind the same middleware and session, does not
vary much. Everything runs in-process on a throwaway SQLite database.

    python bench/run.py [--traders 500] [--runs 30]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKDIR = tempfile.mkdtemp(prefix="gatecheck-bench-")
atexit.register(shutil.rmtree, WORKDIR, ignore_errors=True)
os.environ["DATABASE_URL"] = f"sqlite:///{WORKDIR}/bench.sqlite3"
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.signals import request_finished, request_started  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: E402

from accounts.models import Desk, User, UserSession  # noqa: E402
from checklist.models import AcceptedRisk, Drill, Subscription, TradingProfile  # noqa: E402
from checklist.services import snapshot_all  # noqa: E402
from devices.models import ApiKey, Automation, RecoveryMethod, TrustedDevice  # noqa: E402


def bare(request):
    return HttpResponse("ok")


# The project's routes plus one view that does nothing, behind the same middleware.
urlpatterns = [path("bench/bare/", bare), path("", include(settings.ROOT_URLCONF))]


def build(traders: int) -> tuple[User, User]:
    """A desk of ``traders`` with varied inventories, scored today and a week ago."""
    today = timezone.localdate()
    lead = User.objects.create_user("lead", email="lead@example.com")
    desk = Desk.objects.create(name="Bench desk")
    desk.leads.add(lead)
    users = User.objects.bulk_create(
        [User(username=f"trader{i:04d}", first_name="Trader", last_name=f"{i:04d}", email=f"t{i}@example.com") for i in range(traders)]
    )
    desk.members.add(*users)
    devices, methods, keys, subs, drills, profiles, risks = [], [], [], [], [], [], []
    for i, u in enumerate(users):
        devices += [
            TrustedDevice(owner=u, name="Workstation", kind="desktop", platforms=["tws", "client_portal"], validated_on=today - timedelta(days=i % 400)),
            TrustedDevice(owner=u, name="Phone", kind="mobile", platforms=["mobile"], validated_on=today - timedelta(days=(i * 3) % 400)),
        ]
        methods += [
            RecoveryMethod(owner=u, kind="phone", label=f"+1 555 010 {i:04d}", last_verified_on=today - timedelta(days=i % 220)),
            RecoveryMethod(owner=u, kind="email", label=f"t{i}@example.net", last_verified_on=today - timedelta(days=(i * 7) % 220)),
            RecoveryMethod(owner=u, kind="backup_codes", label="Printed card", last_verified_on=today - timedelta(days=30)),
        ]
        created, expires = today - timedelta(days=i % 120), today + timedelta(days=(i % 60) - 10)
        keys.append(ApiKey(owner=u, label="algo", scopes=["read", "trade"], service_account=True, created_on=created, expires_on=expires))
        subs.append(Subscription(owner=u, region="US", feed="US equities bundle", active=i % 5 != 0))
        started = datetime.now(UTC) - timedelta(days=i % 120)
        drills.append(Drill(owner=u, lost_device="Phone", started_at=started, finished_at=started + timedelta(minutes=10 + i % 40), completed=True))
        profiles.append(
            TradingProfile(
                owner=u, broker_mfa=("ib_key", "sms", "authenticator_app", None)[i % 4], regions_traded=["US"],
                plan_complex_orders="tws", plan_transfers_statements="client_portal", plan_alerts_light_execution="mobile",
            )
        )
        if i % 4 == 0:
            risks.append(AcceptedRisk(owner=u, rule="marketdata.covered", reason="US feed renewal pending", until=today + timedelta(days=20)))
    TrustedDevice.objects.bulk_create(devices)
    RecoveryMethod.objects.bulk_create(methods)
    stored_keys = ApiKey.objects.bulk_create(keys)
    Automation.objects.bulk_create(
        [
            Automation(owner=k.owner, name="Spread bot", api_key=k, token_refresh=True, fallback_contact="desk", on_auth_failure=("flatten", "halt")[n % 2])
            for n, k in enumerate(stored_keys)
        ]
    )
    Subscription.objects.bulk_create(subs)
    Drill.objects.bulk_create(drills)
    TradingProfile.objects.bulk_create(profiles)
    AcceptedRisk.objects.bulk_create(risks)
    snapshot_all(today - timedelta(days=7))
    snapshot_all(today)
    return lead, users[0]


def signed_in(user: User) -> Client:
    """A client in the state the login flow leaves: password and code done."""
    device = TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    session = client.session
    now = time.time()
    session.update({"otp_device_id": device.persistent_id, "auth_at": now, "seen_at": now, "mfa_at": now})
    session.save()
    UserSession.objects.create(user=user, session_key=session.session_key)
    return client


def timed(client: Client, url: str, runs: int) -> tuple[float, int, int]:
    """Median milliseconds, response size and query count of GET ``url``."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    # Count now: the next request resets the connection's query log.
    queries = len(captured)
    assert response.status_code == 200, f"{url} answered {response.status_code}"
    for _ in range(3):
        client.get(url)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(url)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), len(response.content), queries


def keep_connection() -> None:
    """Keep one database connection across requests, as CONN_MAX_AGE does in
    production and Django's test runner does, so that queries can be counted."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traders", type=int, default=500)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    keep_connection()
    started = time.perf_counter()
    lead, trader = build(args.traders)
    print(f"Built a desk of {args.traders} traders in {time.perf_counter() - started:.1f} s ({connection.vendor}).")
    lead_client, trader_client = signed_in(lead), signed_in(trader)

    with override_settings(ROOT_URLCONF=__name__):
        pages = [
            ("bare view", lead_client, "/bench/bare/"),
            (f"desk page, {args.traders} traders", lead_client, "/desk/"),
            ("desk trader detail", lead_client, f"/desk/traders/{trader.pk}/"),
            ("trader dashboard", trader_client, "/"),
        ]
        results = [(label, *timed(client, url, args.runs)) for label, client, url in pages]

    base = results[0][1]
    print(f"\nMedian of {args.runs} requests each, in-process through the full middleware stack:\n")
    print(f"{'page':<32} {'ms':>8} {'x bare':>8} {'queries':>8} {'KiB':>8}")
    for label, ms, size, queries in results:
        print(f"{label:<32} {ms:>8.1f} {ms / base:>8.1f} {queries:>8} {size / 1024:>8.0f}")


if __name__ == "__main__":
    main()
