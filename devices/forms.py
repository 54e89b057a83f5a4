"""Forms for the whole inventory: devices, recovery methods, keys,
automations, the profile, market data, permissions, drills, accepted risks
and the inventory file.

Each inventory form gets its owner in the constructor, so that uniqueness
per owner and the choice of keys are checked against that trader's rows
only. Free text goes through the core's secret check: Gatecheck records
where things are, never a credential.
"""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.utils import timezone

from accounts.forms import SecretScrubMixin
from readiness import rules
from readiness import vocabulary as words
from readiness.brokers import BROKER_LABELS, DEFAULT_BROKER, catalog_for
from readiness.secrets import fingerprint_problem
from readiness.validators import HEARTBEAT_GRACE_MINUTES, HEARTBEAT_PERIOD_MINUTES, duplicate_message, duplicate_problem, future_problem

from . import schedules
from .inventory import MAX_IMPORT_BYTES
from .models import AcceptedRisk, ApiKey, Automation, Permission, Platform, RecoveryMethod, Region, Subscription, TradingProfile, TrustedDevice
from .selectors import broker_of


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class OwnedForm(SecretScrubMixin, forms.ModelForm):
    """Base for inventory forms.

    * ``unique_field`` is unique per owner: a clash is an error on that field
      rather than an IntegrityError.
    * Every text field goes through the secret detector (SecretScrubMixin);
      ``free_text_fields`` also get ``autocomplete="off"``.
    * Dates in ``past_date_fields`` may not lie in the future.
    """

    unique_field: str = ""
    free_text_fields: tuple[str, ...] = ()
    past_date_fields: tuple[str, ...] = ()

    def __init__(self, *args, owner, **kwargs):
        self.owner = owner
        super().__init__(*args, **kwargs)
        for name in self.free_text_fields:
            if name in self.fields:
                self.fields[name].widget.attrs.setdefault("autocomplete", "off")

    def clean(self):
        cleaned = super().clean()
        today = timezone.localdate()
        for name in self.past_date_fields:
            value = self.cleaned_data.get(name)
            if value is not None and (problem := future_problem(value, today)):
                self.add_error(name, problem)
        if self.unique_field and self.cleaned_data.get(self.unique_field):
            value = self.cleaned_data[self.unique_field]
            clash = self._meta.model.objects.for_owner(self.owner).filter(**{self.unique_field: value})
            if self.instance.pk:
                clash = clash.exclude(pk=self.instance.pk)
            taken = clash.values_list(self.unique_field, flat=True)
            if problem := duplicate_problem(value, taken, noun=self.noun(), field=self.unique_field):
                self.add_error(self.unique_field, problem)
        return cleaned

    def noun(self) -> str:
        return str(self._meta.model._meta.verbose_name)

    def add_duplicate_error(self) -> None:
        """A parallel save took the name after this form checked it (the
        database constraint refused the row): the same message as a clash found here."""
        self.add_error(self.unique_field, duplicate_message(self.noun(), self.unique_field))

    def validate_unique(self):
        # Uniqueness per owner is checked in _clean_fields with a clear message;
        # owner is not a form field, so the model check would not see it.
        return None

    def save(self, commit: bool = True):
        raise NotImplementedError("Inventory writes go through devices.services.")


class TrustedDeviceForm(OwnedForm):
    unique_field = "name"
    free_text_fields = ("name", "notes")
    past_date_fields = ("validated_on",)

    platforms = forms.MultipleChoiceField(
        choices=Platform.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The broker access points you use on this device.",
    )

    class Meta:
        model = TrustedDevice
        fields = ["name", "kind", "platforms", "validated_on", "browser_saved_password", "notes"]
        widgets = {"validated_on": DateInput(), "notes": forms.Textarea(attrs={"rows": 3})}
        labels = {
            "platforms": "Access points",
            "validated_on": "Validated at the broker on",
            "browser_saved_password": "A browser on this device saves the broker password",
        }
        help_texts = {
            "name": "How you call it, e.g. 'Office workstation'.",
            "validated_on": "The day the broker last accepted this device (device validation). Leave empty if never.",
            "notes": "Where it is, who can unlock it. Never a password or code.",
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, owner=owner, **kwargs)
        # The trader's broker names the access points and decides which exist.
        self.catalog = broker_of(owner)
        field = self.fields["platforms"]
        field.choices = list(self.catalog.access_points.items())
        field.error_messages["invalid_choice"] = f"{self.catalog.name} does not offer %(value)s; choose one of the listed ones."


class RecoveryMethodForm(OwnedForm):
    unique_field = "label"
    free_text_fields = ("label",)
    past_date_fields = ("last_verified_on",)

    class Meta:
        model = RecoveryMethod
        fields = ["kind", "label", "last_verified_on"]
        widgets = {"last_verified_on": DateInput()}
        labels = {"last_verified_on": "Last verified on"}
        help_texts = {
            "label": "The phone number, e-mail address or a description ('Backup codes, printed, desk safe'). "
            "Numbers and addresses are shown masked everywhere but here.",
            "last_verified_on": "The day you last checked it still works. Leave empty if never.",
        }


class ApiKeyForm(OwnedForm):
    unique_field = "label"
    free_text_fields = ("label",)
    past_date_fields = ("created_on", "last_rotated_on")

    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Transfer and withdraw let the key move money: an automation should never need them.",
    )
    # No max_length: a longer value is refused with a clear message instead of
    # being cut by the browser (which would keep the *first* characters).
    fingerprint = forms.CharField(
        required=False,
        label="Last 4 characters",
        help_text="Only the last 4 characters, so you can recognise the key. Never the whole key or secret.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "size": 6}),
    )

    WHOLE_KEY = "That looks like the whole key. Enter only the last 4 characters: Gatecheck never stores secrets."
    secret_messages = {"fingerprint": WHOLE_KEY}

    class Meta:
        model = ApiKey
        fields = ["label", "scopes", "service_account", "ip_restricted", "created_on", "last_rotated_on", "expires_on", "fingerprint"]
        widgets = {"created_on": DateInput(), "last_rotated_on": DateInput(), "expires_on": DateInput()}
        labels = {
            "service_account": "Held by a service account (not your personal login)",
            "ip_restricted": "The broker limits this key to known IP addresses",
            "created_on": "Created on",
            "last_rotated_on": "Last rotated on",
            "expires_on": "Expires on",
        }
        help_texts = {
            "label": "A name for the key, e.g. 'algo-futures'.",
            "last_rotated_on": "Leave empty if never rotated.",
            "expires_on": "Leave empty if the key never expires.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.initial.setdefault("created_on", timezone.localdate())

    def clean_fingerprint(self) -> str:
        value = self.cleaned_data["fingerprint"].strip()
        problem = fingerprint_problem(value)
        if problem == "looks like a full secret":
            raise forms.ValidationError(self.WHOLE_KEY, code="secret")
        if problem:
            raise forms.ValidationError(f"The fingerprint {problem}.")
        return value


class AutomationForm(OwnedForm):
    unique_field = "name"
    free_text_fields = ("name", "fallback_contact")

    class Meta:
        model = Automation
        fields = ["name", "api_key", "token_refresh", "fallback_contact", "on_auth_failure"]
        labels = {
            "api_key": "API key it uses",
            "token_refresh": "Refreshes its session token on its own",
            "on_auth_failure": "When authentication fails, it will",
        }
        help_texts = {
            "name": "The strategy or bot, e.g. 'ES spread bot'.",
            "fallback_contact": "Who is alerted when it cannot log in, e.g. 'desk lead phone'. Never a password.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["api_key"]
        field.queryset = ApiKey.objects.for_owner(self.owner).order_by("label")
        field.empty_label = "None: it runs on my human login"
        field.label_from_instance = lambda key: key.label if key.is_active else f"{key.label} (revoked)"
        if self.instance.pk is None:
            # What happens to open positions is a deliberate choice: a new bot has none preselected.
            failure = self.fields["on_auth_failure"]
            failure.choices = [("", "Choose what it does"), *Automation.OnAuthFailure.choices]
            self.initial["on_auth_failure"] = ""
            failure.error_messages["required"] = "Choose what the bot does when authentication fails."


class HeartbeatForm(SecretScrubMixin, forms.Form):
    """A bot's check-in schedule (CHECKLIST.md "Heartbeats v2"): how often,
    how late it may be, and when check-ins are expected at all. The
    schedule's rules are ``devices.schedules.problems``; each shows next to its field."""

    period_minutes = forms.IntegerField(
        label="Checks in every (minutes)", min_value=HEARTBEAT_PERIOD_MINUTES[0], max_value=HEARTBEAT_PERIOD_MINUTES[1],
        help_text="How often the bot pings after a successful token refresh or keep-alive.",
    )
    grace_minutes = forms.IntegerField(
        label="Grace (minutes)", min_value=HEARTBEAT_GRACE_MINUTES[0], max_value=HEARTBEAT_GRACE_MINUTES[1], initial=2,
        help_text="How late a check-in may be before the bot counts as down.",
    )
    # Not required: a form posted without it (an older page, a script) keeps the simple schedule.
    schedule_kind = forms.ChoiceField(
        label="When", widget=forms.RadioSelect, initial="simple", required=False,
        choices=[("simple", "Always: every period, day and night"), ("cron", "On a cron schedule"),
                 ("market", "During an exchange's trading sessions (idle when it is closed)")],
    )
    cron = forms.CharField(label="Cron expression", required=False, max_length=100,
                           help_text="Five fields: minute hour day month weekday, e.g. */5 9-16 * * 1-5.")
    tz = forms.CharField(label="Time zone of the cron expression", required=False, max_length=64, initial="UTC",
                         help_text="An IANA zone, e.g. America/New_York.")
    exchange = forms.ChoiceField(label="Exchange", required=False)
    before_open = forms.IntegerField(label="Minutes before the open", min_value=schedules.MARGIN_MINUTES[0],
                                     max_value=schedules.MARGIN_MINUTES[1], initial=0, required=False)
    after_close = forms.IntegerField(label="Minutes after the close", min_value=schedules.MARGIN_MINUTES[0],
                                     max_value=schedules.MARGIN_MINUTES[1], initial=0, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["exchange"].choices = [("", "Choose an exchange (MIC)"), *((mic, mic) for mic in schedules.exchanges())]

    def schedule(self) -> schedules.Schedule:
        data = self.cleaned_data
        kind = data.get("schedule_kind") or "simple"
        return schedules.Schedule(
            kind=kind,
            cron=(data.get("cron") or "").strip() if kind == "cron" else "",
            tz=(data.get("tz") or "UTC").strip() if kind == "cron" else "UTC",
            exchange=data.get("exchange") or "" if kind == "market" else "",
            before_open=data.get("before_open") or 0 if kind == "market" else 0,
            after_close=data.get("after_close") or 0 if kind == "market" else 0,
        )

    def clean(self):
        data = super().clean()
        if not self.errors:
            for field, message in schedules.problems(self.schedule()).items():
                if field == "exchange" and not data.get("exchange"):
                    message = "is needed: choose the exchange whose sessions the bot follows"
                self.add_error("schedule_kind" if field == "kind" else field, f"This {message}.")
        return data

    def schedule_data(self) -> dict:
        """The model's schedule fields, from the checked form."""
        schedule = self.schedule()
        return {"schedule_kind": schedule.kind, "cron": schedule.cron, "tz": schedule.tz, "exchange": schedule.exchange,
                "before_open": schedule.before_open, "after_close": schedule.after_close}


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

    platform_restart_at = forms.TimeField(
        label="Daily restart of TWS or IB Gateway", required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="The auto-restart time set in its Lock and Exit settings; your calendar feed marks it each day.",
    )
    platform_restart_tz = forms.CharField(
        label="Time zone of that time", max_length=64, required=False, initial="America/New_York", help_text="An IANA zone, e.g. Europe/London."
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

    def clean_platform_restart_tz(self) -> str:
        zone = (self.cleaned_data.get("platform_restart_tz") or "").strip() or "America/New_York"
        if not schedules.is_zone(zone):
            raise forms.ValidationError("This is not an IANA time zone such as America/New_York.")
        return zone

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
