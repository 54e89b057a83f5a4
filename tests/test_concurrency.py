"""Parallel writes (issue 10), on PostgreSQL where they were reproduced: ten
requests (or commands) released together by a barrier, each through the path
a user takes. Nothing answers 500, and the final state keeps every invariant."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEvent, SignInAlert
from checklist.models import CalendarFeed
from devices.inventory import dumps, export_inventory
from devices.models import AcceptedRisk, Drill, Subscription, TradingProfile
from tests.builders import device, texts
from tests.conftest import PASSWORD, current_code, make_user, verify_client
from tests.test_checklist_profile import PROFILE_POST
from tests.test_inventory import import_document, rich_document

PARALLEL = 10

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("Concurrency is proved on PostgreSQL (DATABASE_URL=postgres://...).")


def in_parallel(work: Callable[[int], object], n: int = PARALLEL) -> list[object]:
    """Run ``work(0..n-1)`` in n threads released together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:  # noqa: BLE001 - reported below, with the others
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def clients(user, n: int = PARALLEL) -> list[Client]:
    """n browsers of ``user``, each with its own verified session."""
    return [verify_client(Client(), user) for _ in range(n)]


def numbered_document(i: int) -> dict:
    """A different file per i: every name carries the number, and the sizes differ."""
    document = copy.deepcopy(rich_document())
    for row in document["devices"]:
        row["name"] = f"{row['name']} #{i}"
    for row in document["api_keys"]:
        row["label"] = f"{row['label']}-{i}"
    for row in document["automations"]:
        row["name"] = f"{row['name']} #{i}"
        if row["api_key"]:
            row["api_key"] = f"{row['api_key']}-{i}"
    document["devices"] = document["devices"][: 1 + i % 4]
    return document


def which_file(user) -> int:
    """The one file the stored inventory came from (asserting it is exactly one)."""
    names = set(user.trusted_devices.values_list("name", flat=True)) | set(user.api_keys.values_list("label", flat=True))
    numbers = {name.rsplit("#", 1)[-1] if "#" in name else name.rsplit("-", 1)[-1] for name in names}
    assert len(numbers) == 1, f"a mix of files: {sorted(numbers)}"
    number = int(numbers.pop())
    twin = make_user(f"twin{number}-{timezone.now().timestamp():.0f}")
    import_document(twin, numbered_document(number))
    assert dumps(export_inventory(user)) == dumps(export_inventory(twin))
    return number


def test_parallel_import_commands_leave_exactly_one_file(alice, tmp_path):
    import_document(alice, rich_document())
    files = []
    for i in range(PARALLEL):
        path = tmp_path / f"inventory-{i}.json"
        path.write_text(json.dumps(numbered_document(i)))
        files.append(str(path))
    in_parallel(lambda i: call_command("import_inventory", "--user", "alice", files[i]))
    which_file(alice)


def test_parallel_import_confirms_in_the_browser_leave_exactly_one_file_and_no_500(alice):
    import_document(alice, rich_document())
    browsers = clients(alice)
    digests = []
    for i, browser in enumerate(browsers):
        raw = json.dumps(numbered_document(i)).encode()
        assert browser.post("/inventory/import/", {"file": SimpleUploadedFile("inventory.json", raw)}).status_code == 302
        digests.append(browser.get("/inventory/import/confirm/").context["digest"])  # before the threads: contexts are safe here
    responses = in_parallel(lambda i: browsers[i].post("/inventory/import/confirm/", {"action": "replace", "digest": digests[i]}))
    assert [r.status_code for r in responses] == [302] * PARALLEL
    assert {r.url for r in responses} == {"/"}  # the dashboard, with the score before and after
    which_file(alice)


def test_parallel_adds_of_the_same_feed_keep_one_and_tell_the_others_why(alice):
    browsers = clients(alice)
    data = {"region": "US", "feed": "US equities bundle", "active": "on"}
    responses = in_parallel(lambda i: browsers[i].post("/subscriptions/add/", data))
    assert sorted(r.status_code for r in responses) == [200] * (PARALLEL - 1) + [302]
    for response in responses:
        if response.status_code == 200:
            assert texts(response.content, "errorlist") == ["You already have a feed with this name. Choose another."]
    assert Subscription.objects.filter(owner=alice).count() == 1


def test_parallel_adds_of_the_same_device_keep_one_and_tell_the_others_why(alice):
    browsers = clients(alice)
    data = {"name": "Office workstation", "kind": "desktop", "platforms": ["tws"], "validated_on": timezone.localdate().isoformat()}
    responses = in_parallel(lambda i: browsers[i].post("/devices/add/", data))
    assert sorted(r.status_code for r in responses) == [200] * (PARALLEL - 1) + [302]
    for response in responses:
        if response.status_code == 200:
            assert texts(response.content, "errorlist") == ["You already have a trusted device with this name. Choose another."]
    assert alice.trusted_devices.count() == 1


def test_parallel_first_saves_of_the_profile_make_one_profile(alice):
    browsers = clients(alice)
    responses = in_parallel(lambda i: browsers[i].post("/profile/", {**PROFILE_POST, "support_contact": f"line {i}"}))
    assert [r.status_code for r in responses] == [302] * PARALLEL
    assert TradingProfile.objects.filter(owner=alice).count() == 1


def test_parallel_accepts_of_the_same_risk_keep_one(alice):
    browsers = clients(alice)
    until = (timezone.localdate() + timedelta(days=30)).isoformat()
    responses = in_parallel(lambda i: browsers[i].post("/risks/accept/", {"rule": "marketdata.covered", "reason": f"reason {i}", "until": until}))
    assert [r.status_code for r in responses] == [302] * PARALLEL
    assert AcceptedRisk.objects.filter(owner=alice, rule="marketdata.covered").count() == 1


def test_parallel_rotations_of_the_calendar_feed_leave_one_working_token(alice):
    browsers = clients(alice)
    responses = in_parallel(lambda i: browsers[i].post("/profile/calendar/"))
    assert [r.status_code for r in responses] == [302] * PARALLEL
    assert CalendarFeed.objects.filter(owner=alice).count() == 1
    # Each browser reads its address once, on the page after the redirect.
    pages = [browser.get("/profile/calendar/address/") for browser in browsers]
    paths = [re.search(r'class="feed-url" value="http://testserver(/calendar\.ics\?token=[\w-]+)"', r.content.decode()).group(1) for r in pages]
    assert len(set(paths)) == PARALLEL
    assert [Client().get(path).status_code for path in paths].count(200) == 1


def test_parallel_drill_starts_run_one_drill(alice):
    lost = device(alice, "iPhone", kind="mobile", platforms=("mobile",))
    browsers = clients(alice)
    responses = in_parallel(lambda i: browsers[i].post("/drills/start/", {"lost_device": lost.pk}))
    assert [r.status_code for r in responses] == [302] * PARALLEL
    running = Drill.objects.filter(owner=alice, completed=False, abandoned_at__isnull=True)
    assert running.count() == 1
    assert {r.url for r in responses} == {f"/drills/{running.get().pk}/"}


# --- Sign-in v2 (issue 14): one-time links and codes work once under parallel use --


def test_a_wasnt_me_link_clicked_ten_times_at_once_acts_once(db):
    alice = make_user("alice")
    client = Client()
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert client.post("/accounts/login/code/", {"otp_token": current_code(alice)}).status_code == 302
    path = re.search(r"https?://[^/\s]+(/accounts/login/not-me/[^\s]+/)", mail.outbox[-1].body).group(1)
    statuses = in_parallel(lambda i: Client().post(path).status_code)
    assert sorted(statuses) == [302] + [400] * (PARALLEL - 1)
    assert AuditEvent.objects.filter(action="login.reported").count() == 1
    assert SignInAlert.objects.get().used_at is not None
