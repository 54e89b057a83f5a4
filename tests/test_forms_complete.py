"""Forms that never drop a field (issue "Correct and finished"): every add and
edit page renders every field its form declares, and saving an edit page
unchanged, as a browser would submit it, changes nothing. The pages come from
the URL patterns, so a new form cannot go without these checks."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import get_resolver

from devices.inventory import export_inventory
from devices.models import Automation, TradingProfile
from tests import builders as build

pytestmark = pytest.mark.django_db

# The pages that bind a form to one of the trader's items, by URL name; the
# model whose row fills <pk> (None: the page has no pk).
EDIT_SUFFIXES = ("_add", "_edit")
EXTRA = {"checklist:profile": None, "devices:automation_heartbeat": "automation"}


class Forms(HTMLParser):
    """What a browser submits for each POST form of a page, unchanged."""

    def __init__(self):
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []
        self.inside = False
        self.select: str | None = None
        self.selected: list[str] = []
        self.first_option: str | None = None
        self.textarea: str | None = None
        self.text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("method", "").lower() == "post":
            self.inside = True
            self.forms.append([])
        if not self.inside:
            return
        data = self.forms[-1]
        if tag == "input" and a.get("name") and "disabled" not in a:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    data.append((a["name"], a.get("value", "on")))
            elif kind not in ("submit", "button", "file"):
                data.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self.select, self.selected, self.first_option = a.get("name"), [], None
        elif tag == "option" and self.select:
            value = a.get("value", "")
            self.first_option = value if self.first_option is None else self.first_option
            if "selected" in a:
                self.selected.append(value)
        elif tag == "textarea":
            self.textarea, self.text = a.get("name"), ""

    def handle_data(self, data):
        if self.textarea:
            self.text += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self.select:
            for value in self.selected or [self.first_option or ""]:
                self.forms[-1].append((self.select, value))
            self.select = None
        elif tag == "textarea" and self.textarea:
            self.forms[-1].append((self.textarea, self.text.lstrip("\n")))
            self.textarea = None


def submitted(html: str) -> dict[str, list[str]]:
    """The page's main form (the POST form with the most fields; the header's
    sign-out button is a form too), as a browser would submit it unchanged."""
    parser = Forms()
    parser.feed(html)
    values: dict[str, list[str]] = {}
    for name, value in max(parser.forms, key=len):
        values.setdefault(name, []).append(value)
    return values


@pytest.fixture
def stocked(alice):
    """alice with one item of each kind, products on her profile (as an import
    brings them), a pending permission."""
    build.prepared_trader(alice)
    TradingProfile.objects.filter(owner=alice).update(products_traded=["stocks", "futures"])
    build.permission(alice, "options", "US", status="pending")  # not traded: no finding of its own
    return alice


def edit_pages(owner, *, adds: bool = True) -> list[str]:
    models = {"device": "trusted_devices", "recovery": "recovery_methods", "key": "api_keys", "automation": "automations"}
    pages = []
    for app in ("devices", "checklist"):
        resolver = get_resolver().namespace_dict[app][1]
        for name in resolver.reverse_dict:
            if not isinstance(name, str):
                continue
            full = f"{app}:{name}"
            if not (name.endswith(EDIT_SUFFIXES) or full in EXTRA) or (name.endswith("_add") and not adds):
                continue
            prefix = EXTRA.get(full) or name.rsplit("_", 1)[0]
            pattern = resolver.reverse_dict.getlist(name)[0][0][0][0]
            if "%(pk)s" in pattern:
                related = getattr(owner, models.get(prefix, f"{prefix}s"))
                pages.append("/" + pattern % {"pk": related.order_by("pk").first().pk})
            else:
                pages.append("/" + pattern)
    return sorted(set(pages))


def test_the_pages_under_test_are_every_add_and_edit_page(stocked):
    pages = edit_pages(stocked)
    assert len(pages) >= 14 and "/profile/" in pages and any(p.startswith("/permissions/") and p.endswith("/edit/") for p in pages)


def test_every_add_and_edit_page_renders_every_field_its_form_declares(stocked, alice_client):
    for page in edit_pages(stocked):
        response = alice_client.get(page)
        assert response.status_code == 200, page
        form = response.context.get("form")
        if form is None:
            continue
        html = response.content.decode()
        missing = [name for name in form.fields if f'name="{form.add_prefix(name)}"' not in html]
        assert missing == [], f"{page} leaves out {missing}"


def test_saving_any_edit_page_unchanged_changes_nothing(stocked, alice_client):
    before = export_inventory(stocked)
    for page in edit_pages(stocked, adds=False):
        data = submitted(alice_client.get(page).content.decode())
        response = alice_client.post(page, data)
        assert response.status_code == 302, f"{page}: {response.status_code}"
        assert export_inventory(stocked) == before, page
    assert before["profile"]["products_traded"] == ["stocks", "futures"]


def test_a_pending_permission_wears_the_partial_tag_not_a_tick(stocked, alice_client):
    html = alice_client.get("/permissions/").content.decode()
    titles = [chunk.split("</div>")[0] for chunk in html.split('class="inv-title"')[1:]]
    (pending,) = [t for t in titles if "Pending" in t]
    assert "tag-partial" in pending and "tag-pass" not in pending
    assert any("tag-pass" in t and "Granted" in t for t in titles)


def test_a_new_bots_failure_action_is_chosen_not_preselected(alice, alice_client):
    page = alice_client.get("/automations/add/").content.decode()
    assert submitted(page)["on_auth_failure"] == [""]
    response = alice_client.post("/automations/add/", {"name": "ES spread bot", "fallback_contact": "desk lead phone"})
    assert response.status_code == 200 and not Automation.objects.filter(owner=alice).exists()
    assert "Choose what the bot does when authentication fails." in response.content.decode()
    alice_client.post("/automations/add/", {"name": "ES spread bot", "fallback_contact": "desk lead phone", "on_auth_failure": "flatten"})
    assert Automation.objects.get(owner=alice).on_auth_failure == "flatten"
