"""Forms for the trader's own readiness inputs.

Free text goes through the core's secret check: Gatecheck records
where things are, never a credential.
"""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.utils import timezone

from accounts.forms import SecretScrubMixin
from devices.models import Platform, TrustedDevice
from readiness import rules
from readiness import vocabulary as words
from readiness.brokers import BROKER_LABELS, DEFAULT_BROKER, catalog_for
from readiness.validators import duplicate_message, duplicate_problem, future_problem

from .inventory import MAX_IMPORT_BYTES
from .models import AcceptedRisk, Permission, Region, Subscription, TradingProfile

NOT_CHOSEN = ("", "Not chosen yet")


NOT_OFFERED = "{broker} does not offer this; choose one of the listed ones."
PLAN_FIELDS = {f"plan_{task}": task for task in words.TASKS}


def _plan_field(task: str) -> forms.ChoiceField:
    return forms.ChoiceField(label=words.TASKS[task].capitalize(), choices=[NOT_CHOSEN, *Platform.choices], required=False)


class ProfileForm(SecretScrubMixin, forms.Form):
    broker = forms.ChoiceField(choices=list(BROKER_LABELS.items()), initial=DEFAULT_BROKER)
    broker_mfa = forms.ChoiceField(
        label="Second factor on your broker login",
        choices=[("", "Not recorded yet"), *TradingProfile.BrokerMfa.choices],
        required=False,
        help_text="App approval, IB Key, an authenticator app or a hardware key pass; SMS or e-mail codes count half.",
    )
    regions_traded = forms.MultipleChoiceField(
        label="Regions you trade",
        choices=[(code, name if code == Region.OTHER else f"{name} ({code})") for code, name in Region.choices],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each region needs an active market-data feed.",
    )
    products_traded = forms.MultipleChoiceField(
        label="Products you trade",
        choices=list(words.PRODUCTS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Each product in each region you trade needs a trading permission.",
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The broker chosen (in this submit, or stored) names the access points
        # and decides which codes and second factors can be chosen.
        chosen = self.data.get(self.add_prefix("broker")) if self.is_bound else self.initial.get("broker")
        self.catalog = catalog_for(chosen)
        message = {"invalid_choice": NOT_OFFERED.format(broker=self.catalog.name)}
        mfa = self.fields["broker_mfa"]
        mfa.choices = [("", "Not recorded yet"), *((code, label) for code, label in TradingProfile.BrokerMfa.choices if self.catalog.offers_mfa(code))]
        mfa.error_messages.update(message)
        for name, task in PLAN_FIELDS.items():
            field = self.fields[name]
            field.choices = [NOT_CHOSEN, *self.catalog.access_points.items()]
            field.error_messages.update(message)
            suitable = sorted(self.catalog.point_name(p) for p in self.catalog.suitable[task])
            field.help_text = f"Suits: {' or '.join(suitable)}." if suitable else ""

    def clean(self):
        cleaned = super().clean()
        # Empty choices are stored as null ("not recorded", "no access point").
        for name in ("broker_mfa", "plan_complex_orders", "plan_transfers_statements", "plan_alerts_light_execution"):
            if name in cleaned:
                cleaned[name] = cleaned[name] or None
        if "regions_traded" in cleaned:
            order = [code for code, _ in Region.choices]
            cleaned["regions_traded"] = sorted(cleaned["regions_traded"], key=order.index)
        if "products_traded" in cleaned:
            cleaned["products_traded"] = sorted(cleaned["products_traded"], key=list(words.PRODUCTS).index)
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


class PermissionForm(forms.ModelForm):
    """A trading permission; the pair is unique per trader (checked here and by the database)."""

    class Meta:
        model = Permission
        fields = ("product", "region", "status", "requested_on")
        widgets = {"requested_on": forms.DateInput(attrs={"type": "date"})}
        labels = {"requested_on": "Requested on"}
        help_texts = {"requested_on": "The day you asked the broker; brokers apply changes after about two days."}

    def __init__(self, *args, owner, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)

    def clean_requested_on(self):
        day = self.cleaned_data.get("requested_on")
        problem = future_problem(day, timezone.localdate()) if day is not None else None
        if problem:
            raise forms.ValidationError(problem)
        return day

    def clean(self):
        cleaned = super().clean()
        product, region = cleaned.get("product"), cleaned.get("region")
        others = Permission.objects.for_owner(self.owner).filter(product=product, region=region)
        if self.instance.pk:
            others = others.exclude(pk=self.instance.pk)
        if product and region and others.exists():
            self.add_error("region", "You already have this permission; edit that one instead.")
        if cleaned.get("status") == Permission.Status.PENDING and not cleaned.get("requested_on"):
            self.add_error("requested_on", "When did you ask? A pending request needs its date.")
        return cleaned

    def validate_unique(self):
        # The pair's uniqueness is checked in clean() with a clear message, and by the database.
        pass


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
