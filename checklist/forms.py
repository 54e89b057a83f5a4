"""Forms for the trader's own readiness inputs.

Free text goes through the core's secret check: Gatecheck records
where things are, never a credential.
"""

from __future__ import annotations

from datetime import date, timedelta

from django import forms

from accounts.forms import SecretScrubMixin
from devices.models import Platform, TrustedDevice
from readiness import rules
from readiness import vocabulary as words
from readiness.validators import duplicate_message, duplicate_problem

from .inventory import MAX_IMPORT_BYTES
from .models import AcceptedRisk, Region, Subscription, TradingProfile

NOT_CHOSEN = ("", "Not chosen yet")


def _plan_field(task: str) -> forms.ChoiceField:
    suitable = sorted(words.ACCESS_POINT_WORDS[p] for p in words.SUITABLE_ACCESS_POINTS[task])
    return forms.ChoiceField(
        label=words.TASKS[task].capitalize(),
        choices=[NOT_CHOSEN, *Platform.choices],
        required=False,
        help_text=f"Suits: {' or '.join(suitable)}.",
    )


class ProfileForm(SecretScrubMixin, forms.Form):
    broker = forms.CharField(max_length=50, initial="IBKR")
    broker_mfa = forms.ChoiceField(
        label="Second factor on your broker login",
        choices=[("", "Not recorded yet"), *TradingProfile.BrokerMfa.choices],
        required=False,
        help_text="IB Key, an authenticator app or a hardware key pass; SMS codes count half.",
    )
    regions_traded = forms.MultipleChoiceField(
        label="Regions you trade",
        choices=[(code, name if code == Region.OTHER else f"{name} ({code})") for code, name in Region.choices],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each region needs an active market-data feed.",
    )
    plan_complex_orders = _plan_field("complex_orders")
    plan_transfers_statements = _plan_field("transfers_statements")
    plan_alerts_light_execution = _plan_field("alerts_light_execution")
    support_contact = forms.CharField(
        label="Broker support contact",
        max_length=200,
        required=False,
        help_text="The support phone line or page you would call after losing a device; printed on your recovery card.",
    )

    @classmethod
    def for_profile(cls, profile: TradingProfile, data=None) -> ProfileForm:
        initial = {name: getattr(profile, name) for name in cls.base_fields}
        return cls(data, initial=initial)

    def clean(self):
        cleaned = super().clean()
        # Empty choices are stored as null ("not recorded", "no access point").
        for name in ("broker_mfa", "plan_complex_orders", "plan_transfers_statements", "plan_alerts_light_execution"):
            if name in cleaned:
                cleaned[name] = cleaned[name] or None
        if "regions_traded" in cleaned:
            order = [code for code, _ in Region.choices]
            cleaned["regions_traded"] = sorted(cleaned["regions_traded"], key=order.index)
        return cleaned


class SubscriptionForm(SecretScrubMixin, forms.Form):
    region = forms.ChoiceField(choices=Region.choices)
    feed = forms.CharField(
        label="Feed name", max_length=120, help_text="As the broker names it, e.g. 'US equities bundle'."
    )
    active = forms.BooleanField(label="Active (you pay for it and it is switched on)", required=False, initial=True)

    def __init__(self, *args, owner, instance: Subscription | None = None, **kwargs):
        self.owner = owner
        self.instance = instance
        if instance is not None:
            kwargs.setdefault("initial", {"region": instance.region, "feed": instance.feed, "active": instance.active})
        super().__init__(*args, **kwargs)

    NOUN, UNIQUE_FIELD = "feed", "name"

    def clean_feed(self) -> str:
        feed = self.cleaned_data["feed"].strip()
        others = Subscription.objects.for_owner(self.owner).filter(feed=feed)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if problem := duplicate_problem(feed, others.values_list("feed", flat=True), noun=self.NOUN, field=self.UNIQUE_FIELD):
            raise forms.ValidationError(problem)
        return feed

    def add_duplicate_error(self) -> None:
        """A parallel request saved the same feed after this form checked it."""
        self.add_error("feed", duplicate_message(self.NOUN, self.UNIQUE_FIELD))


class DrillStartForm(forms.Form):
    lost_device = forms.ModelChoiceField(
        label="Which device do you pretend to have lost?",
        queryset=TrustedDevice.objects.none(),
        empty_label=None,
        help_text="Put it out of reach for the drill; the clock runs until you are back in on another device.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lost_device"].queryset = TrustedDevice.objects.for_owner(owner).filter(status=TrustedDevice.Status.ACTIVE)


RULE_CHOICES = [(rule.id, rule.title) for rule in rules.CATALOG]


class AcceptRiskForm(SecretScrubMixin, forms.Form):
    rule = forms.ChoiceField(choices=RULE_CHOICES, widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Why is this acceptable for now?",
        max_length=300,
        help_text="Your desk lead sees this reason.",
    )
    until = forms.DateField(
        label="Until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=f"At most {AcceptedRisk.MAX_DAYS} days from today.",
    )

    def __init__(self, *args, today: date, **kwargs):
        self.today = today
        super().__init__(*args, **kwargs)
        latest = today + timedelta(days=AcceptedRisk.MAX_DAYS)
        self.fields["until"].widget.attrs.update(min=today.isoformat(), max=latest.isoformat())

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Give a reason.")
        return reason

    def clean_until(self) -> date:
        until = self.cleaned_data["until"]
        if until < self.today:
            raise forms.ValidationError("Pick today or a later day.")
        if until > self.today + timedelta(days=AcceptedRisk.MAX_DAYS):
            raise forms.ValidationError(f"At most {AcceptedRisk.MAX_DAYS} days ahead: review the risk again by then.")
        return until


class InventoryUploadForm(forms.Form):
    file = forms.FileField(
        label="Inventory file (JSON)",
        help_text="A gatecheck.inventory document, such as the one the download button gives you.",
        widget=forms.ClearableFileInput(attrs={"accept": "application/json,.json"}),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_IMPORT_BYTES // 1024} KB; an inventory is much smaller.")
        return upload
