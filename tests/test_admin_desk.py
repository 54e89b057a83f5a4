"""The admin panel as a desk lead's panel (SECURITY.md 20, 21, 25, 31).

lena leads the "Futures desk" (alice); olga leads the "Options desk" (bob).
Both traders own one row of every inventory model. A lead sees their desk's
rows read-only, with phone and e-mail masked; nothing of bob's is reachable
by list, filter, search, lookup, autocomplete, raw-id popup or id.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services
from accounts.audit import record_event
from accounts.models import AuditEvent, RecoveryCode, User, UserSession
from desk.models import ReminderLog
from devices.models import AcceptedRisk, ApiKey, Automation, Drill, RecoveryMethod, Subscription, TradingProfile, TrustedDevice
from tests import builders as build
from tests.builders import lead_of, snapshot
from tests.conftest import make_user, verify_client

pytestmark = pytest.mark.django_db


def inventory(user: User, tail: str) -> dict[str, object]:
    """One row of every model the admin shows, labelled with the user's name."""
    day = timezone.localdate()
    name = user.username
    key = ApiKey.objects.create(owner=user, label=f"{name}-algo", scopes=["read"], service_account=True, created_on=day, fingerprint="9Zq4")
    start = timezone.now() - timedelta(days=3)
    rows = {
        "devices/trusteddevice": TrustedDevice.objects.create(
            owner=user, name=f"{name}-workstation", kind="desktop", validated_on=day, notes=f"{name} keeps the token in drawer 3"
        ),
        "devices/recoverymethod": RecoveryMethod.objects.create(owner=user, kind="phone", label=f"+1 555 010 {tail}", last_verified_on=day),
        "devices/apikey": key,
        "devices/automation": Automation.objects.create(
            owner=user, name=f"{name}-bot", api_key=key, token_refresh=True, fallback_contact="+1 555 777 0199", on_auth_failure="flatten"
        ),
        "devices/subscription": Subscription.objects.create(owner=user, region="US", feed=f"{name}-feed"),
        "devices/drill": Drill.objects.create(
            owner=user, lost_device=f"{name}-phone", started_at=start, finished_at=start + timedelta(minutes=10), completed=True
        ),
        "devices/acceptedrisk": AcceptedRisk.objects.create(
            owner=user, rule="marketdata.covered", reason=f"{name} closed HK", until=day + timedelta(days=10)
        ),
        "devices/tradingprofile": TradingProfile.objects.create(owner=user, broker_mfa="ib_key", support_contact=f"{name}-support"),
        "checklist/readinesssnapshot": snapshot(user, score=72),
        "desk/reminderlog": ReminderLog.objects.create(recipient=user, kind="daily", date=day),
        "accounts/auditevent": record_event(action="test.marker", subject=user, actor=user, object_label=f"{name}-marker {tail}"),
        "accounts/user": user,
    }
    return rows


@pytest.fixture
def olga(bob) -> User:
    return lead_of("Options desk", "olga", bob)


@pytest.fixture
def rows(alice, bob, lena, olga) -> dict[str, dict[str, object]]:
    return {"alice": inventory(alice, "0142"), "bob": inventory(bob, "0777")}


@pytest.fixture
def root_client(db) -> Client:
    root = make_user("root", is_staff=True, is_superuser=True)
    return verify_client(Client(), root)


MODELS = [
    "devices/trusteddevice",
    "devices/recoverymethod",
    "devices/apikey",
    "devices/automation",
    "devices/subscription",
    "devices/drill",
    "devices/acceptedrisk",
    "devices/tradingprofile",
    "checklist/readinesssnapshot",
    "desk/reminderlog",
    "accounts/auditevent",
    "accounts/user",
]


# --- Rows ---------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_lead_lists_only_their_desks_rows(lena_client, rows, model):
    response = lena_client.get(f"/admin/{model}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"/admin/{model}/{rows['alice'][model].pk}/change/" in html
    assert f"/admin/{model}/{rows['bob'][model].pk}/change/" not in html
    # The rows the changelist shows, not words in the page (a nonce can spell "bob").
    shown = list(response.context["cl"].result_list)
    assert rows["alice"][model] in shown and rows["bob"][model] not in shown


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("page", ["change", "history", "delete"])
def test_lead_cannot_reach_another_desks_row_by_id(lena_client, rows, model, page):
    obj = rows["bob"][model]
    response = lena_client.get(f"/admin/{model}/{obj.pk}/{page}/")
    assert response.status_code in (302, 403, 404)
    if response.status_code == 302:
        assert response["Location"] == "/admin/"
    # Nothing of the object was rendered: no change form, history or deletion summary.
    assert response.context is None or not ({"original", "object", "deleted_objects"} & set(response.context.keys()))
    assert type(obj)._base_manager.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", MODELS)
def test_lead_views_own_rows_read_only(lena_client, rows, model):
    obj = rows["alice"][model]
    page = lena_client.get(f"/admin/{model}/{obj.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert lena_client.post(f"/admin/{model}/{obj.pk}/change/", {}).status_code == 403
    assert lena_client.get(f"/admin/{model}/add/").status_code == 403
    assert lena_client.post(f"/admin/{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert type(obj)._base_manager.filter(pk=obj.pk).exists()


def test_superuser_sees_everything_but_edits_inventories_only_through_the_app(root_client, rows):
    html = root_client.get("/admin/devices/recoverymethod/").content.decode()
    # Recovery labels are masked for everyone but their owner's edit form.
    assert "+1 555 010 0142" not in html and "0142" in html and "0777" in html
    method = rows["bob"]["devices/recoverymethod"]
    assert "+1 555 010 0777" not in root_client.get(f"/admin/devices/recoverymethod/{method.pk}/change/").content.decode()
    users = root_client.get("/admin/accounts/user/").content.decode()
    assert "alice@example.com" in users and "bob@example.com" in users
    device = rows["bob"]["devices/trusteddevice"]
    page = root_client.get(f"/admin/devices/trusteddevice/{device.pk}/change/").content.decode()
    assert "drawer 3" in page and 'name="_save"' not in page
    response = root_client.post(f"/admin/devices/trusteddevice/{device.pk}/change/", {"name": "renamed", "notes": "password: Hunter2-x"})
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.name != "renamed"


def test_superuser_edits_of_users_and_desks_are_audited(root_client, rows):
    from accounts.models import AuditEvent, Desk

    desk = Desk.objects.first()
    response = root_client.post(f"/admin/accounts/desk/{desk.pk}/change/", {"name": "Renamed desk", "leads": [], "members": [], "escalation_minutes": 15})
    assert response.status_code == 302
    event = AuditEvent.objects.filter(action="admin.desk.changed").get()
    assert "name" in event.details["fields"]


def test_a_leads_admin_reads_are_audited(lena_client, rows):
    from accounts.models import AuditEvent

    lena_client.get("/admin/devices/trusteddevice/")
    device = rows["alice"]["devices/trusteddevice"]
    lena_client.get(f"/admin/devices/trusteddevice/{device.pk}/change/")
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"desk.admin_list_viewed", "desk.admin_record_viewed"} <= actions


# --- Filters, search, lookups, autocomplete, raw-id popups -----------------------------------


def test_desk_filter_offers_only_the_leads_desks(lena_client, rows):
    html = lena_client.get("/admin/accounts/user/").content.decode()
    assert "Futures desk" in html and "Options desk" not in html
    other = User.objects.get(username="olga").led_desks.get()
    filtered = lena_client.get(f"/admin/devices/trusteddevice/?desk={other.pk}").content.decode()
    assert "bob-workstation" not in filtered and "alice-workstation" not in filtered


@pytest.mark.parametrize(
    "url",
    [
        "/admin/accounts/user/?email__startswith=a",
        "/admin/accounts/user/?password__startswith=md5",
        "/admin/devices/recoverymethod/?label__contains=555",
        "/admin/devices/apikey/?fingerprint=9Zq4",
        "/admin/devices/trusteddevice/?notes__contains=drawer",
        "/admin/devices/trusteddevice/?owner__email__startswith=a",
        "/admin/accounts/auditevent/?ip=127.0.0.1",
    ],
)
def test_lead_cannot_filter_on_hidden_fields(lena_client, rows, url):
    # A filter on a hidden field would answer questions about its value.
    assert lena_client.get(url).status_code == 400


def test_superuser_may_filter_on_any_field(root_client, rows):
    assert root_client.get("/admin/accounts/user/?email__startswith=a").status_code == 200


def test_lead_search_never_matches_hidden_fields_or_other_desks(lena_client, rows):
    assert list(lena_client.get("/admin/devices/recoverymethod/?q=0142").context["cl"].result_list) == []
    assert "0 users" in lena_client.get("/admin/accounts/user/?q=example.com").content.decode()
    assert "0 users" in lena_client.get("/admin/accounts/user/?q=bob").content.decode()
    assert "1 user" in lena_client.get("/admin/accounts/user/?q=ali").content.decode()


def test_autocomplete_is_scoped_to_the_leads_traders(lena_client, rows):
    response = lena_client.get("/admin/autocomplete/", {"app_label": "devices", "model_name": "trusteddevice", "field_name": "owner", "term": ""})
    assert response.status_code == 200
    names = {item["text"] for item in response.json()["results"]}
    assert names == {"alice"}


def test_raw_id_popup_is_scoped_to_the_leads_traders(lena_client, rows):
    response = lena_client.get("/admin/accounts/user/?_to_field=id&_popup=1")
    assert [user.username for user in response.context["cl"].result_list] == ["alice"]


# --- Sensitive fields --------------------------------------------------------------------------


def test_lead_sees_phone_and_email_masked(lena_client, rows):
    users = lena_client.get("/admin/accounts/user/").content.decode()
    assert "a***@example.com" in users and "alice@example.com" not in users
    phone = rows["alice"]["devices/recoverymethod"]
    page = lena_client.get(f"/admin/devices/recoverymethod/{phone.pk}/change/").content.decode()
    assert "+1 *** *** 0142" in page and "555 010" not in page
    listing = lena_client.get("/admin/devices/recoverymethod/").content.decode()
    assert "+1 *** *** 0142" in listing and "555 010" not in listing
    bot = rows["alice"]["devices/automation"]
    assert "555 777" not in lena_client.get(f"/admin/devices/automation/{bot.pk}/change/").content.decode()
    user = lena_client.get(f"/admin/accounts/user/{rows['alice']['accounts/user'].pk}/change/").content.decode()
    assert "a***@example.com" in user and "alice@example.com" not in user
    assert "md5$" not in user and "Password" not in user


def test_lead_never_sees_notes_fingerprints_or_audit_addresses(lena_client, rows):
    device = rows["alice"]["devices/trusteddevice"]
    assert "drawer 3" not in lena_client.get(f"/admin/devices/trusteddevice/{device.pk}/change/").content.decode()
    key = rows["alice"]["devices/apikey"]
    assert "9Zq4" not in lena_client.get(f"/admin/devices/apikey/{key.pk}/change/").content.decode()
    assert "9Zq4" not in lena_client.get("/admin/devices/apikey/").content.decode()
    event = rows["alice"]["accounts/auditevent"]
    page = lena_client.get(f"/admin/accounts/auditevent/{event.pk}/change/").content.decode()
    assert "User agent" not in page and "Details" not in page
    assert "alice-marker" in page


def test_readiness_score_and_level_columns_on_users(lena_client, rows):
    html = lena_client.get("/admin/accounts/user/").content.decode()
    assert '<td class="field-readiness_score">72</td>' in html
    assert "At risk" in html


def test_totp_seeds_and_backup_code_hashes_are_never_shown(root_client, lena_client, alice):
    services.backup_codes_generate(user=alice)
    device = TOTPDevice.objects.get(user=alice)
    page = root_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert device.key not in html and device.key.upper() not in html
    assert 'name="key"' not in html
    codes_device = alice.recoverycodedevice_set.get()
    html = root_client.get(f"/admin/accounts/recoverycodedevice/{codes_device.pk}/change/").content.decode()
    for code in RecoveryCode.objects.filter(device=codes_device):
        assert code.code_hash not in html and code.salt not in html
    assert "10" in html  # unused codes, as a count
    assert lena_client.get("/admin/otp_totp/totpdevice/").status_code == 403
    assert lena_client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").status_code == 403
    assert lena_client.get("/admin/accounts/recoverycodedevice/").status_code == 403


def test_audit_events_are_read_only_even_for_superusers(root_client, rows):
    event = rows["bob"]["accounts/auditevent"]
    assert root_client.get("/admin/accounts/auditevent/add/").status_code == 403
    assert root_client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert root_client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "test.marker"


# --- The index and actions ----------------------------------------------------------------------


def test_admin_index_links_to_the_desk_dashboard(lena_client):
    assert 'href="/desk/"' in lena_client.get("/admin/").content.decode()


def test_a_trader_cannot_use_the_admin(alice_client):
    response = alice_client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def _action(client: Client, action: str, *users: User):
    return client.post("/admin/accounts/user/", {"action": action, "_selected_action": [u.pk for u in users], "index": 0})


def test_export_action_goes_through_the_audited_desk_export(lena_client, rows, alice):
    response = _action(lena_client, "export_readiness", alice)
    assert response.status_code == 302
    assert response["Location"] == f"/desk/export.csv?trader={alice.pk}"
    body = build.body(lena_client.get(response["Location"]))
    assert "alice" in body
    assert AuditEvent.objects.filter(action="desk.exported").exists()


def test_reminder_action_emails_selected_traders(lena_client, rows, alice, bob, mailoutbox):
    _action(lena_client, "send_reminders", alice, bob)
    assert [m.to for m in mailoutbox] == [["alice@example.com"]]
    assert AuditEvent.objects.filter(action="desk.reminder_sent", subject=alice).exists()


def test_reset_action_opens_the_reset_page_for_one_trader(lena_client, rows, alice):
    response = _action(lena_client, "reset_mfa", alice)
    assert response["Location"] == f"/desk/traders/{alice.pk}/mfa-reset/"
    other = make_user("dina")
    alice.desks.get().members.add(other)
    response = _action(lena_client, "reset_mfa", alice, other)
    assert response.status_code == 302 and response["Location"] == "/admin/accounts/user/"
    assert TOTPDevice.objects.filter(user=alice).exists()


def test_actions_ignore_another_desks_ids(lena_client, rows, bob, mailoutbox):
    _action(lena_client, "send_reminders", bob)
    assert mailoutbox == []
    response = _action(lena_client, "reset_mfa", bob)
    assert response["Location"] == "/admin/accounts/user/"


# --- One sign-in, password change and sign-out for the whole site --------------------------------


def test_admin_login_form_is_not_a_second_way_in(alice_client, lena_client):
    # A verified trader cannot try other accounts' passwords and codes here,
    # outside the login's rate limits.
    assert alice_client.get("/admin/login/").status_code == 403
    assert alice_client.post("/admin/login/", {"username": "lena", "password": "x", "otp_token": "123456"}).status_code == 403
    response = lena_client.get("/admin/login/?next=/admin/accounts/user/")
    assert response["Location"] == "/admin/accounts/user/"


def test_admin_password_change_uses_the_step_up_protected_page(lena_client):
    assert lena_client.get("/admin/password_change/")["Location"] == "/accounts/password/change/"


def test_admin_logout_ends_the_server_session(lena_client, lena):
    response = lena_client.post("/admin/logout/")
    assert response["Location"] == "/accounts/login/"
    assert not UserSession.objects.filter(user=lena).exists()
    assert AuditEvent.objects.filter(action="logout", actor=lena).exists()
    assert lena_client.get("/admin/")["Location"].startswith("/accounts/login/")
