"""Forms of the desk pages: the table's filters and the MFA reset."""

from __future__ import annotations

from typing import NamedTuple

from django import forms
from django.db.models import QuerySet

from accounts.forms import SecretScrubMixin
from accounts.invitations import MAX_PER_BATCH, addresses_from
from accounts.models import Desk

from .selectors import LEVEL_LABELS, RULE_IDS, RULE_TITLES, SORT_KEYS, DeskQuery


class IdListField(forms.Field):
    """Repeated ``?trader=12&trader=15`` (the admin's selection) as ints.

    Any id is acceptable here; the selector keeps only traders the viewer
    oversees.
    """

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        values = [str(v) for v in (value or [])]
        if not all(v.isdigit() for v in values):
            raise forms.ValidationError("Trader ids are whole numbers.")
        return [int(v) for v in values]


class DeskFilterForm(SecretScrubMixin, forms.Form):
    """The GET form above the desk table. Gets the lead's desks in its
    constructor, so a desk of someone else is simply not a valid choice."""

    q = forms.CharField(
        label="Search by name", required=False, max_length=100, widget=forms.SearchInput(attrs={"placeholder": "Name or username"})
    )
    level = forms.ChoiceField(label="Level", required=False, choices=[("", "Any level"), *LEVEL_LABELS.items()])
    failing = forms.ChoiceField(
        label="Fails outright", required=False, choices=[("", "Any rule"), *((rid, RULE_TITLES[rid]) for rid in RULE_IDS)]
    )
    # Named apart from "Fails outright": this one also lists partial results.
    rule = forms.ChoiceField(
        label="Falls short on", required=False, choices=[("", "Any rule"), *((rid, RULE_TITLES[rid]) for rid in RULE_IDS)]
    )
    due = forms.ChoiceField(
        label="Due dates", required=False, choices=[("", "Any"), ("overdue", "Overdue"), ("due_soon", "Overdue or due soon")]
    )
    desk = forms.ModelChoiceField(label="Desk", required=False, queryset=Desk.objects.none(), empty_label="All my desks")
    sort = forms.ChoiceField(required=False, choices=[(key, key) for key in SORT_KEYS], widget=forms.HiddenInput)
    dir = forms.ChoiceField(required=False, choices=[("asc", "asc"), ("desc", "desc")], widget=forms.HiddenInput)
    trader = IdListField(required=False)
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def __init__(self, desks: QuerySet[Desk], *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["desk"].queryset = desks
        self.desk_choices = list(desks)

    class Control(NamedTuple):
        name: str
        label: str
        # (value, label, selected)
        options: tuple[tuple[str, str, bool], ...]

    def controls(self) -> dict[str, Control]:
        """The selects' options with the current choice marked, for the
        template to write (Django renders each widget and each option
        through a template of its own: a fifth of the desk page's time)."""
        data = self.cleaned_data if self.is_bound else {}
        out = {}
        for name in ("level", "failing", "rule", "due", "desk"):
            field = self.fields[name]
            current = data.get(name)
            current = "" if current is None else str(getattr(current, "pk", current))
            choices = [("", field.empty_label), *((d.pk, d) for d in self.desk_choices)] if name == "desk" else field.choices
            out[name] = self.Control(name, field.label, tuple((str(v), str(text), str(v) == current) for v, text in choices))
        return out

    def query(self) -> DeskQuery:
        data = self.cleaned_data
        desk = data.get("desk")
        ids = data.get("trader") or None
        return DeskQuery(
            q=(data.get("q") or "").strip(),
            level=data.get("level") or "",
            failing=data.get("failing") or "",
            rule=data.get("rule") or "",
            due=data.get("due") or "",
            sort=data.get("sort") or "score",
            descending=data.get("dir") == "desc",
            desks=(desk,) if desk else None,
            # The one desk on view (picked, or the viewer's only one): its tallies hold the tiles.
            one_desk=desk.pk if desk else (self.desk_choices[0].pk if len(self.desk_choices) == 1 else None),
            trader_ids=tuple(ids) if ids else None,
            page=data.get("page") or 1,
        )


class MfaResetForm(SecretScrubMixin, forms.Form):
    reason = forms.CharField(
        label="Reason",
        min_length=10,
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What happened, and how you confirmed who the trader is (for example: a call back on the desk phone).",
    )
    identity_confirmed = forms.BooleanField(
        label="I confirmed the trader's identity out of band (in person or by calling a number we already hold).",
        required=True,
    )


class InviteForm(SecretScrubMixin, forms.Form):
    """One address, a pasted list, or a CSV file (up to 500 addresses)."""

    desk = forms.ModelChoiceField(queryset=Desk.objects.none(), empty_label=None)
    addresses = forms.CharField(
        label="E-mail addresses",
        required=False,
        max_length=40_000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "ana@example.com, ben@example.com"}),
        help_text="One or more, separated by commas, spaces or lines. Up to 500 at a time.",
    )
    csv_file = forms.FileField(label="Or a CSV file", required=False, help_text="Every cell holding an address is read.")

    def __init__(self, *args, desks: QuerySet[Desk], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["desk"].queryset = desks

    def clean_csv_file(self):
        upload = self.cleaned_data.get("csv_file")
        if upload and upload.size > 200_000:
            raise forms.ValidationError("The file is larger than 200 KB; 500 addresses fit in far less.")
        return upload

    def clean(self):
        data = super().clean()
        upload = data.get("csv_file")
        found = addresses_from(data.get("addresses") or "", upload.read() if upload else None)
        if not found and not self.errors:
            self.add_error("addresses", "Enter at least one e-mail address, or choose a CSV file.")
        elif len(found) > MAX_PER_BATCH:
            self.add_error("addresses", f"At most {MAX_PER_BATCH} addresses at a time; this holds {len(found)}.")
        data["found"] = found
        return data


class OffboardForm(SecretScrubMixin, forms.Form):
    confirm = forms.BooleanField(label="I understand", required=True)
