"""Device-loss drills: start (which device is lost), the drill page with the
trader's own steps and a running clock, "I'm back in", abandon, history."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import AuditEvent
from checklist.models import ReadinessSnapshot
from devices.models import Drill
from tests import builders as build

pytestmark = pytest.mark.django_db


def page(response) -> str:
    return html.unescape(response.content.decode())


def start(client, device) -> Drill:
    response = client.post("/drills/start/", {"lost_device": device.pk})
    assert response.status_code == 302
    drill = Drill.objects.latest("pk")
    assert response["Location"] == f"/drills/{drill.pk}/"
    return drill


def confirm_steps(client, drill: Drill) -> None:
    """Do every step of the way back in, in order, as the trader would."""
    for step in drill.steps.order_by("position"):
        assert client.post(f"/drills/{drill.pk}/step/", {"position": step.position}).status_code == 302


def test_the_start_form_offers_my_active_devices_only(alice, bob, alice_client):
    build.device(alice, "Office workstation")
    build.device(alice, "Old phone", kind="mobile", status="revoked")
    build.device(bob, "Bob's laptop", kind="laptop")
    text = page(alice_client.get("/drills/"))
    assert "Office workstation" in text
    assert "Old phone" not in text and "Bob's laptop" not in text


def test_without_devices_the_drill_page_points_to_adding_them(alice_client):
    text = page(alice_client.get("/drills/"))
    assert "No device to lose yet" in text and 'href="/devices/"' in text


def test_starting_takes_the_server_time_and_is_audited(alice, alice_client):
    workstation = build.device(alice)
    before = timezone.now()
    response = alice_client.post("/drills/start/", {"lost_device": workstation.pk, "started_at": "2020-01-01T00:00:00Z"})
    drill = Drill.objects.get(owner=alice)
    assert response["Location"] == f"/drills/{drill.pk}/"
    assert before <= drill.started_at <= timezone.now()
    assert drill.lost_device == "Office workstation"
    assert drill.is_running and drill.finished_at is None and not drill.completed
    assert AuditEvent.objects.filter(action="drill.started", subject=alice, object_label=str(drill)).exists()


def test_another_traders_device_cannot_be_chosen(alice_client, bob):
    bobs = build.device(bob, "Bob's laptop", kind="laptop")
    response = alice_client.post("/drills/start/", {"lost_device": bobs.pk})
    assert response.status_code == 302 and response["Location"] == "/drills/"
    assert not Drill.objects.exists()


def test_a_second_start_returns_the_running_drill(alice, alice_client):
    workstation = build.device(alice)
    first = start(alice_client, workstation)
    assert start(alice_client, workstation) == first
    assert Drill.objects.count() == 1
    assert "A drill is running" in page(alice_client.get("/drills/"))


def test_the_drill_page_builds_steps_from_my_own_devices_and_recovery_methods(alice, alice_client):
    workstation = build.device(alice, "Office workstation")
    build.device(alice, "iPhone", kind="mobile", platforms=("mobile",))
    build.recovery(alice, "phone", "+1 555 010 0142")
    build.recovery(alice, "email", "alice@example.com")
    build.recovery(alice, "backup_codes", "Printed, in the desk safe")
    build.profile(alice, support_contact="+1 877 442 2757")
    drill = start(alice_client, workstation)
    text = page(alice_client.get(f"/drills/{drill.pk}/"))
    assert "Drill: you lost 'Office workstation'" in text
    assert "Sign in to IBKR on 'iPhone' (phone: IBKR Mobile)" in text
    assert "backup codes 'Printed, in the desk safe'" in text
    assert "+1 *** *** 0142" in text and "a***@example.com" in text
    assert "555 010 0142" not in text and "alice@example.com" not in text
    assert "Support: +1 877 442 2757." in text
    assert build.texts(text, "gap-tag") == []


def test_the_clock_reads_the_server_start_time_from_a_data_attribute(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    Drill.objects.filter(pk=drill.pk).update(started_at=timezone.now() - timedelta(minutes=7, seconds=5))
    drill.refresh_from_db()
    text = page(alice_client.get(f"/drills/{drill.pk}/"))
    assert f'data-started-ms="{int(drill.started_at.timestamp() * 1000)}"' in text
    assert re.search(r'data-server-now-ms="\d{13}"', text)
    assert 'data-target-ms="1800000"' in text
    assert "<span data-clock-value>07:0" in text
    assert '<script src="/static/js/drill-clock.js" defer></script>' in text
    assert (Path(settings.BASE_DIR) / "static/js/drill-clock.js").read_text().count("data-started-ms") == 1


def test_im_back_in_finishes_at_server_time_and_rescores(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    Drill.objects.filter(pk=drill.pk).update(started_at=timezone.now() - timedelta(minutes=18))
    confirm_steps(alice_client, drill)
    response = alice_client.post(f"/drills/{drill.pk}/finish/", {"finished_at": "2020-01-01T00:00:00Z"})
    assert response.status_code == 302 and response["Location"] == f"/drills/{drill.pk}/"
    drill.refresh_from_db()
    assert drill.completed and not drill.is_running
    assert timedelta(minutes=18) <= drill.reentry < timedelta(minutes=19)
    event = AuditEvent.objects.get(action="drill.finished")
    assert event.details["completed"] == {"old": False, "new": True}
    assert event.details["finished_at"] == {"old": None, "new": drill.finished_at.isoformat()}
    assert ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate()).statuses["drill.rehearsed"] == "pass"
    text = page(alice_client.get(f"/drills/{drill.pk}/"))
    assert "Back in after" in text and "18 min" in text and "Within target" in text
    assert "drill-clock.js" not in text


def test_a_second_finish_changes_nothing(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    confirm_steps(alice_client, drill)
    alice_client.post(f"/drills/{drill.pk}/finish/")
    drill.refresh_from_db()
    finished = drill.finished_at
    alice_client.post(f"/drills/{drill.pk}/finish/")
    drill.refresh_from_db()
    assert drill.finished_at == finished
    assert AuditEvent.objects.filter(action="drill.finished").count() == 1


def test_abandoning_leaves_no_finish_time_and_no_score(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    response = alice_client.post(f"/drills/{drill.pk}/abandon/")
    assert response.status_code == 302 and response["Location"] == "/drills/"
    drill.refresh_from_db()
    assert drill.abandoned_at is not None and drill.finished_at is None and not drill.completed
    assert AuditEvent.objects.filter(action="drill.abandoned").exists()
    assert ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate()).statuses["drill.rehearsed"] == "fail"
    # An abandoned drill cannot be finished afterwards.
    alice_client.post(f"/drills/{drill.pk}/finish/")
    drill.refresh_from_db()
    assert not drill.completed
    assert "Abandoned" in page(alice_client.get("/drills/"))


def test_finish_and_abandon_are_post_only(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    assert alice_client.get(f"/drills/{drill.pk}/finish/").status_code == 405
    assert alice_client.get(f"/drills/{drill.pk}/abandon/").status_code == 405
    drill.refresh_from_db()
    assert drill.is_running


def test_a_trader_with_one_device_sees_the_gaps_in_the_steps(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    text = page(alice_client.get(f"/drills/{drill.pk}/"))
    assert build.texts(text, "gap-tag") == ["✕ Gap"] * 4
    assert "You have no other validated device" in text
    assert "No support contact saved" in text


@pytest.mark.parametrize("suffix", ["", "finish/", "abandon/"])
def test_another_traders_drill_is_not_found_and_unchanged(suffix, alice_client, bob):
    drill = Drill.objects.create(owner=bob, lost_device="Bob's laptop", started_at=timezone.now())
    assert alice_client.get(f"/drills/{drill.pk}/{suffix}").status_code in (404, 405)
    assert alice_client.post(f"/drills/{drill.pk}/{suffix}").status_code == 404
    drill.refresh_from_db()
    assert drill.is_running


def test_history_lists_reentry_times_and_the_trend(alice, alice_client):
    today = timezone.localdate()
    build.drill(alice, minutes=45, day=today - timedelta(days=60))
    build.drill(alice, minutes=22, day=today - timedelta(days=30))
    build.drill(alice, minutes=18, day=today - timedelta(days=2))
    Drill.objects.create(owner=alice, lost_device="iPhone", started_at=timezone.now() - timedelta(days=1), abandoned_at=timezone.now())
    response = alice_client.get("/drills/")
    text = page(response)
    assert "45 min" in text and "22 min" in text and "18 min" in text
    assert text.count("Within target") >= 2 and "Slower" in text and "Abandoned" in text
    assert "4 min faster than the drill before." in text
    bars = re.findall(r'<rect class="bar (bar-\w+)"', text)
    assert bars == ["bar-partial", "bar-pass", "bar-pass"]
    assert "target 30 min" in text


def test_a_drill_is_steps_each_confirmed_in_order_at_server_time(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    steps = list(drill.steps.order_by("position"))
    assert len(steps) >= 5 and all(s.confirmed_at is None for s in steps)
    # Not the next one: refused, nothing recorded.
    alice_client.post(f"/drills/{drill.pk}/step/", {"position": 2, "confirmed_at": "2020-01-01T00:00:00Z"})
    assert not drill.steps.filter(confirmed_at__isnull=False).exists()
    before = timezone.now()
    alice_client.post(f"/drills/{drill.pk}/step/", {"position": 0})
    first = drill.steps.get(position=0)
    assert first.confirmed_at is not None and before <= first.confirmed_at <= timezone.now()
    assert AuditEvent.objects.filter(action="drill.step_confirmed", subject=alice).count() == 1


def test_im_back_in_is_refused_until_every_step_is_confirmed(alice, alice_client):
    drill = start(alice_client, build.device(alice))
    response = alice_client.post(f"/drills/{drill.pk}/finish/", follow=True)
    drill.refresh_from_db()
    assert drill.is_running and not drill.completed
    assert any("Confirm every step first" in str(m) for m in response.context["messages"])
    assert ReadinessSnapshot.objects.get(user=alice, date=timezone.localdate()).statuses["drill.rehearsed"] == "fail"


def test_steps_never_rely_on_a_factor_that_went_with_the_lost_phone(alice, alice_client):
    phone = build.device(alice, "iPhone", kind="mobile", platforms=("mobile",))
    build.device(alice, "Office workstation")
    build.recovery(alice, "phone", "+1 555 010 0142")
    build.recovery(alice, "email", "alice@example.com")
    build.recovery(alice, "authenticator", "Authenticator app on the iPhone")
    build.recovery(alice, "backup_codes", "Printed, in the desk safe")
    build.profile(alice, broker_mfa="ib_key")
    drill = start(alice_client, phone)
    details = " ".join(s.detail for s in drill.steps.all())
    assert "0142" not in details  # the recovery number rang on the lost phone
    assert "authenticator app 'Authenticator app on the iPhone'" not in details
    assert "backup codes 'Printed, in the desk safe'" in details and "a***@example.com" in details


def test_the_lead_sees_step_times_and_which_evidence_was_recorded(alice, alice_client, lena_client):
    drill = start(alice_client, build.device(alice))
    confirm_steps(alice_client, drill)
    alice_client.post(f"/drills/{drill.pk}/finish/")
    build.drill(alice, minutes=12, day=timezone.localdate() - timedelta(days=30))  # as an import would write it
    html = lena_client.get(f"/desk/traders/{alice.pk}/").content
    kinds = build.texts(html, "evidence-kind")
    assert kinds == ["Recorded by Gatecheck", "Self-declared (imported)"]
    steps = build.texts(html, "step-times")[0]
    assert "Switch to another trusted device: +" in steps and "Confirm you are back in: +" in steps


# --- Catalog v2.1: a drill clicked through too fast does not count -------------------------


def test_a_drill_finished_in_9_seconds_does_not_count_and_says_why(alice, alice_client, lena_client):
    from devices.selectors import inventory_for
    from readiness import rules

    build.prepared_trader(alice)
    Drill.objects.filter(owner=alice).delete()
    clicked = build.drill(alice, minutes=9 / 60)
    report = rules.evaluate(inventory_for(alice), timezone.localdate())
    drill_rule = next(r for r in report.results if r.id == "drill.rehearsed")
    assert drill_rule.status == rules.FAIL  # no drill counts
    texts = [f.message for f in drill_rule.findings]
    assert "Drill of 9 s is too fast to count" in texts and any("No device-loss drill completed" in t for t in texts)
    assert "Too fast to count" in page(alice_client.get("/drills/")) and "Within target" not in page(alice_client.get("/drills/"))
    assert "Too fast to count" in page(alice_client.get(f"/drills/{clicked.pk}/"))
    lead_view = page(lena_client.get(f"/desk/traders/{alice.pk}/"))
    assert "too fast to count" in lead_view and "on target" not in lead_view


def test_a_two_minute_drill_counts(alice):
    from devices.selectors import inventory_for
    from readiness import rules

    build.prepared_trader(alice)
    Drill.objects.filter(owner=alice).delete()
    build.drill(alice, minutes=2)
    report = rules.evaluate(inventory_for(alice), timezone.localdate())
    assert next(r for r in report.results if r.id == "drill.rehearsed").status == rules.PASS
