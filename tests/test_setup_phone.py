"""Setting up an authenticator on the phone that runs it: a link opens the
app with the account filled in, the QR comes before the code field, the key
reads in groups of four that never break across lines, and a wrong code is
not shown back."""

from __future__ import annotations

from base64 import b32encode
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


class _Elements(HTMLParser):
    """Every start tag in document order, with its attributes and, for
    links and spans, its text."""

    def __init__(self):
        super().__init__()
        self.found: list[dict] = []
        self._open: list[dict] = []

    def handle_starttag(self, tag, attrs):
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        self.found.append(element)
        if tag in ("a", "span"):
            self._open.append(element)

    def handle_endtag(self, tag):
        if self._open and self._open[-1]["tag"] == tag:
            self._open.pop()

    def handle_data(self, data):
        for element in self._open:
            element["text"] += data


def elements(response) -> list[dict]:
    parser = _Elements()
    parser.feed(response.content.decode())
    return parser.found


def index_of(found: list[dict], test) -> int:
    return next(i for i, element in enumerate(found) if test(element))


@pytest.fixture
def erin(db) -> User:
    """A new trader between the password and her first authenticator."""
    return make_user("erin", with_totp=False)


@pytest.fixture
def erin_client(erin) -> Client:
    client = Client()
    assert client.post("/accounts/login/", {"username": "erin", "password": PASSWORD})["Location"].startswith("/accounts/mfa/setup/")
    return client


def test_a_link_opens_the_authenticator_app_with_the_devices_address(erin, erin_client):
    page = erin_client.get("/accounts/mfa/setup/")
    device = TOTPDevice.objects.get(user=erin, confirmed=False)
    links = [e for e in elements(page) if e["tag"] == "a" and e["text"].strip() == "Open in authenticator app"]
    assert len(links) == 1
    href = links[0]["attrs"]["href"]
    assert href == device.config_url and href.startswith("otpauth://totp/Gatecheck%3Aerin?secret=")
    assert "no-store" in page["Cache-Control"]


def test_the_qr_code_comes_before_the_code_field(erin_client):
    page = erin_client.get("/accounts/mfa/setup/")
    found = elements(page)
    qr = index_of(found, lambda e: e["tag"] == "svg")
    code_field = index_of(found, lambda e: e["tag"] == "input" and e["attrs"].get("name") == "otp_token")
    assert qr < code_field
    html = page.content.decode()
    assert html.index("<svg") < html.index("Enter the 6-digit code") < html.index('name="otp_token"')


def test_the_setup_key_reads_in_groups_of_four_that_never_break(erin, erin_client):
    page = erin_client.get("/accounts/mfa/setup/")
    key = b32encode(TOTPDevice.objects.get(user=erin, confirmed=False).bin_key).decode()
    groups = [e["text"] for e in elements(page) if e["tag"] == "span" and "setup-key-group" in e["attrs"].get("class", "")]
    assert "".join(groups) == key
    assert all(len(group) == 4 for group in groups[:-1]) and 1 <= len(groups[-1]) <= 4
    assert " ".join(groups) in page.content.decode().replace('</span> <span class="setup-key-group">', " ")
    stylesheet = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    rule = stylesheet[stylesheet.index(".setup-key-group {") :].split("}")[0]
    assert "white-space: nowrap" in rule


@pytest.mark.parametrize("url", ["/accounts/mfa/setup/", "/accounts/security/authenticators/add/"])
def test_after_a_wrong_code_the_code_field_is_empty(erin, erin_client, alice_client, url):
    client, user = (erin_client, erin) if "setup" in url else (alice_client, User.objects.get(username="alice"))
    response = client.post(url, {"name": "Work phone", "otp_token": "123456"})
    assert response.status_code == 200
    assert "did not match" in response.content.decode()
    inputs = {e["attrs"]["name"]: e["attrs"] for e in elements(response) if e["tag"] == "input" and "name" in e["attrs"]}
    assert inputs["otp_token"].get("value", "") == ""
    assert "123456" not in response.content.decode()
    assert inputs["name"]["value"] == "Work phone"  # the rest of the form is kept
    assert not TOTPDevice.objects.filter(user=user, confirmed=False, name="Work phone").exists()


def test_a_code_refused_during_back_off_leaves_the_field_empty_too(erin, erin_client):
    erin_client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": "123456"})
    response = erin_client.post("/accounts/mfa/setup/", {"name": "Phone", "otp_token": "654321"})
    assert "Too many wrong codes in a row" in response.content.decode()
    assert "654321" not in response.content.decode()
