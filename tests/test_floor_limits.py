"""Sign-in limits for a trading floor behind one NAT address: failures count
per account, per username and address, and per address; an allow-listed
office network skips only the per-address cap. Behind a proxy left
unconfigured, the app says so once."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from accounts import services
from accounts.models import AuthFailure
from tests.conftest import PASSWORD, make_user
from tests.test_auth_login import sign_in

pytestmark = pytest.mark.django_db

NAT = "198.51.100.7"


def floor_client() -> Client:
    return Client(REMOTE_ADDR=NAT)


def mistype(username: str, times: int = 1) -> None:
    for _ in range(times):
        floor_client().post("/accounts/login/", {"username": username, "password": "wrong"})


@pytest.fixture
def floor(db, settings):
    """Twelve traders behind one address; a per-address cap of 10."""
    settings.GATECHECK_IP_FAILURE_LIMIT = 10
    return [make_user(f"trader{i:02d}") for i in range(12)]


def test_a_locked_out_nat_address_refuses_even_a_correct_password(floor, alice):
    for trader in floor[:11]:
        mistype(trader.username)
    response = floor_client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert "Too many failed attempts" in response.content.decode()


def test_an_allow_listed_office_network_lets_the_correct_password_through(floor, alice, settings):
    settings.GATECHECK_OFFICE_NETWORKS = ["198.51.100.0/24"]
    for trader in floor[:11]:
        mistype(trader.username)
    response = sign_in(floor_client(), alice)
    assert response.status_code == 302 and response["Location"] == "/"
    assert not AuthFailure.objects.filter(bucket__startswith="ip:").exists()


def test_the_office_network_still_caps_one_username_from_that_address(floor, alice, settings):
    settings.GATECHECK_OFFICE_NETWORKS = ["198.51.100.0/24"]
    settings.GATECHECK_USER_IP_FAILURE_LIMIT = 3
    mistype("alice", 3)
    response = floor_client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert "Too many failed attempts" in response.content.decode()
    # bob at the same address is not affected.
    bob = make_user("bob")
    assert sign_in(floor_client(), bob)["Location"] == "/"


def test_username_and_address_are_counted_as_a_pair(alice, settings):
    settings.GATECHECK_USER_IP_FAILURE_LIMIT = 2
    settings.GATECHECK_ACCOUNT_FAILURE_LIMIT = 10
    guesser = Client(REMOTE_ADDR="203.0.113.9")
    for _ in range(2):
        guesser.post("/accounts/login/", {"username": "Alice", "password": "wrong"})
    assert "Too many failed attempts" in guesser.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).content.decode()
    # alice from her own address is still under the account cap.
    assert sign_in(Client(REMOTE_ADDR="192.0.2.20"), alice)["Location"] == "/"
    digest = services.username_digest("alice")
    # The refused third attempt is not counted: attempts during a lock never extend it.
    assert AuthFailure.objects.filter(bucket=f"password:user-ip:{digest}:203.0.113.9").count() == 2


def test_ipv6_office_networks_match_by_prefix(settings, rf):
    settings.GATECHECK_OFFICE_NETWORKS = ["2001:db8:aa::/48"]
    assert services.in_office_network("2001:db8:aa:1::5")
    assert not services.in_office_network("2001:db8:bb::5")
    request = rf.post("/", REMOTE_ADDR="2001:db8:aa:1::5")
    assert [name.split(":")[0] for name, _ in services.failure_buckets(request, step="password", username="alice")] == ["password", "password"]


def test_a_forwarded_for_header_without_a_trusted_proxy_count_is_warned_about_once(client, caplog, settings):
    from accounts.net import ProxyHeaderCheckMiddleware

    check = ProxyHeaderCheckMiddleware(lambda request: None)
    with caplog.at_level(logging.WARNING, logger="gatecheck.security"):
        check(client.get("/healthz").wsgi_request)
        assert "GATECHECK_TRUSTED_PROXY_COUNT" not in caplog.text
        from django.test import RequestFactory

        for _ in range(3):
            check(RequestFactory().get("/", HTTP_X_FORWARDED_FOR="192.0.2.1", REMOTE_ADDR="10.0.0.2"))
    assert caplog.text.count("GATECHECK_TRUSTED_PROXY_COUNT is 0") == 1
    settings.GATECHECK_TRUSTED_PROXY_COUNT = 1
    assert ProxyHeaderCheckMiddleware(lambda request: None).warned
