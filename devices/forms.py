"""Forms for the credential inventory.

Each form gets its owner in the constructor, so that uniqueness per owner
and the choice of keys are checked against that trader's rows only.
"""

from __future__ import annotations

from django import forms
from django.utils import timezone

from accounts.forms import SecretScrubMixin
from readiness.secrets import fingerprint_problem
from readiness.validators import HEARTBEAT_GRACE_MINUTES, HEARTBEAT_PERIOD_MINUTES, duplicate_message, duplicate_problem, future_problem

from .models import ApiKey, Automation, Platform, RecoveryMethod, TrustedDevice
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


class HeartbeatForm(forms.Form):
    """A bot's check-in schedule, in minutes."""

    period_minutes = forms.IntegerField(
        label="Checks in every (minutes)", min_value=HEARTBEAT_PERIOD_MINUTES[0], max_value=HEARTBEAT_PERIOD_MINUTES[1],
        help_text="How often the bot pings after a successful token refresh or keep-alive.",
    )
    grace_minutes = forms.IntegerField(
        label="Grace (minutes)", min_value=HEARTBEAT_GRACE_MINUTES[0], max_value=HEARTBEAT_GRACE_MINUTES[1], initial=2,
        help_text="How late a check-in may be before the bot counts as down.",
    )
