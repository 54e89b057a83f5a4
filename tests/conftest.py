"""People and clients for the tests: alice the trader, bob another trader,
lena the desk lead of alice's desk."""

from __future__ import annotations

import os
import re
import time

import pytest
from django.db import connection
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from accounts.models import Desk, User, UserSession
from accounts.services import SESSION_ROW

# live_server + sync Playwright run the ORM inside Playwright's event loop,
# from fixture set-up to database teardown; no test here runs async views.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

PASSWORD = "correct horse battery staple 42"

# Property tests: a short run on every `make test` (CI included), a long one
# with HYPOTHESIS_PROFILE=long. Examples share the test's database
# transaction, hence the function-scoped fixtures are fine.
_QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
hypothesis_settings.register_profile("ci", max_examples=30, deadline=None, database=None, suppress_health_check=_QUIET)
hypothesis_settings.register_profile("long", max_examples=1000, deadline=None, suppress_health_check=_QUIET)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium", "args": CHROMIUM_ARGS}


@pytest.fixture
def allow_async_unsafe():
    """Kept for browser tests that name it; the variable is set for the whole run above."""
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


def make_user(username: str, *, with_totp: bool = True, verified: bool = True, **extra) -> User:
    """A user with a password, an authenticator app and (unless told
    otherwise) a confirmed e-mail address, as most tests need."""
    email = f"{username}@example.com"
    user = User.objects.create_user(
        username=username, email=email, password=PASSWORD, verified_email=email if verified else "", **extra
    )
    if with_totp:
        TOTPDevice.objects.create(user=user, name="Phone", confirmed=True)
    return user


def current_code(user: User, offset_steps: int = 0) -> str:
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=offset_steps):06d}"


def verify_client(client: Client, user: User) -> Client:
    """Sign a test client in as an MFA-verified user, as the login flow would leave it."""
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    session = client.session
    now = time.time()
    session.update({"otp_device_id": device.persistent_id, "auth_at": now, "seen_at": now, "mfa_at": now})
    session.save()
    row = UserSession.objects.create(user=user, session_key=session.session_key)
    session[SESSION_ROW] = row.pk
    session.save()
    return client


@pytest.fixture
def alice(db) -> User:
    return make_user("alice")


@pytest.fixture
def bob(db) -> User:
    return make_user("bob")


@pytest.fixture
def lena(db, alice) -> User:
    lead = make_user("lena")
    desk = Desk.objects.create(name="Futures desk")
    desk.leads.add(lead)
    desk.members.add(alice)
    return lead


@pytest.fixture
def alice_client(alice) -> Client:
    return verify_client(Client(), alice)


@pytest.fixture
def bob_client(bob) -> Client:
    return verify_client(Client(), bob)


@pytest.fixture
def lena_client(lena) -> Client:
    return verify_client(Client(), lena)


@pytest.fixture
def stale_mfa(alice_client) -> Client:
    """alice's session, verified more than 15 minutes ago."""
    session = alice_client.session
    session["mfa_at"] = time.time() - 16 * 60
    session.save()
    return alice_client


def sign_in_browser(page, live_server, user: User, next_path: str) -> None:
    """Through the real login form: password, then the authenticator code."""
    page.goto(f"{live_server.url}{next_path}")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/accounts/login/code/"))
    page.get_by_label("Authentication code").fill(current_code(user))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{live_server.url}{next_path}")


@pytest.fixture
def read_only_database():
    """Call it to make every write on this connection fail, as with a read-only
    SQLite file or a PostgreSQL standby; reads still work."""
    switched = []

    def switch() -> None:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = ON")
            else:
                # Inside a savepoint, so that rolling back to it makes the test's
                # transaction writable again for the teardown.
                cursor.execute("SAVEPOINT read_only_database")
                cursor.execute("SET LOCAL transaction_read_only = on")
        switched.append(True)

    yield switch
    if switched:
        with connection.cursor() as cursor:
            if connection.vendor == "sqlite":
                cursor.execute("PRAGMA query_only = OFF")
            else:
                cursor.execute("ROLLBACK TO SAVEPOINT read_only_database")
