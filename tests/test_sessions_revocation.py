"""Every live session is tracked and every revocation reaches it (SECURITY.md 11, 12).

Each test tries the revoked browsers' cookies afterwards: a revocation is
proved by the browser being sent back to the login page, not by a row count.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.models import UserSession
from tests.conftest import PASSWORD, verify_client
from tests.test_auth_login import password_step

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "an even better passphrase 77"
RESET = {"reason": "Lost phone on the train; called back on the desk line", "identity_confirmed": "on"}


def set_session(client: Client, **values) -> None:
    session = client.session
    session.update(values)
    session.save()


def signed_out(client: Client) -> bool:
    """The browser's cookie no longer opens anything: the dashboard and the
    enrolment page both send it to the password step."""
    return all(client.get(url).get("Location", "").startswith("/accounts/login/?") for url in ("/", "/accounts/mfa/setup/"))


def change_password(client: Client, user) -> None:
    response = client.post(
        "/accounts/password/change/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response["Location"] == "/accounts/security/"
    # Later sign-ins in the test carry the new password's session hash.
    user.refresh_from_db()


class SessionRows(HTMLParser):
    """The rows of the "Signed-in browsers" list, each as the texts of its tags."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_list = False
        self._tag_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h2":
            self._heading = True
        if tag == "li" and "row" in (attrs.get("class") or "").split() and self._in_list:
            self.rows.append([])
        if tag == "span" and self._tag_depth:
            self._tag_depth += 1  # the glyph inside a tag
        elif tag == "span" and "tag" in (attrs.get("class") or "").split() and self.rows and self._in_list:
            self._tag_depth = 1
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag == "span" and self._tag_depth:
            self._tag_depth -= 1
        if tag == "section":
            self._in_list = False

    def handle_data(self, data):
        if getattr(self, "_heading", False):
            self._in_list = data.strip() == "Signed-in browsers"
            self._heading = False
        if self._tag_depth and self.rows:
            self.rows[-1][-1] += data.strip()


def listed_sessions(client: Client) -> list[list[str]]:
    parser = SessionRows()
    parser.feed(client.get("/accounts/security/").content.decode())
    # Each tag's words, without the glyph that makes it readable without colour.
    return [[" ".join(text.split()).lstrip("✓◐✕–≈! ") for text in row] for row in parser.rows]


def test_after_a_password_change_the_changing_browser_is_still_listed_and_signed_out_by_sign_out_everywhere_else(alice):
    changer = verify_client(Client(), alice)
    change_password(changer, alice)
    assert changer.get("/").status_code == 200
    assert listed_sessions(changer) == [["This browser"]]

    newcomer = verify_client(Client(), alice)
    newcomer.post("/accounts/security/sessions/end-others/")
    assert signed_out(changer)
    assert newcomer.get("/").status_code == 200


def test_an_mfa_reset_ends_every_session_including_one_that_changed_its_password(alice, lena_client):
    changer = verify_client(Client(), alice)
    change_password(changer, alice)
    laptop = verify_client(Client(), alice)
    pending = Client()
    password_step(pending, password=NEW_PASSWORD)
    cookies = [changer, laptop, pending]

    response = lena_client.post(f"/desk/traders/{alice.pk}/mfa-reset/", RESET)
    assert response.status_code == 302
    for browser in cookies:
        assert signed_out(browser)


def test_a_second_password_post_rotates_the_key_and_never_extends_the_pending_window(client, alice):
    password_step(client)
    first_key = client.cookies["sessionid"].value
    started = time.time() - 9 * 60
    set_session(client, auth_at=started)

    response = password_step(client)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/code/")
    second_key = client.cookies["sessionid"].value
    assert second_key != first_key
    assert not Session.objects.filter(session_key=first_key).exists()
    assert client.session["auth_at"] == started
    assert list(UserSession.objects.filter(user=alice).values_list("session_key", flat=True)) == [second_key]

    # Two more minutes: the first password step is more than 10 minutes old.
    set_session(client, auth_at=started - 2 * 60)
    assert client.get("/accounts/login/code/")["Location"].startswith("/accounts/login/?")


def test_only_usable_sessions_are_listed_and_the_half_finished_one_is_named(alice):
    mine = verify_client(Client(), alice)
    now = time.time()

    idle = verify_client(Client(), alice)
    set_session(idle, seen_at=now - 61 * 60)
    too_old = verify_client(Client(), alice)
    set_session(too_old, auth_at=now - 25 * 3600)
    stale_pending = Client()
    password_step(stale_pending)
    set_session(stale_pending, auth_at=now - 11 * 60)
    pending = Client()
    password_step(pending)

    assert sorted(listed_sessions(mine)) == sorted([["This browser"], ["Half-finished sign-in: password only, no code yet"]])
    # The rows of sessions that cannot be used any more are gone, and so are their sessions.
    assert UserSession.objects.filter(user=alice).count() == 2
    for browser in (idle, too_old, stale_pending):
        assert not Session.objects.filter(session_key=browser.cookies["sessionid"].value).exists()
