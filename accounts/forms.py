"""Forms for sign-in, enrolment and account security."""

from __future__ import annotations

import logging

from django import forms
from django.contrib.auth.forms import PasswordResetForm, UserCreationForm
from django.core.exceptions import ValidationError

from readiness.secrets import find_secret, secret_message
from readiness.validators import text_problem

from . import channels, tokens
from .mail import password_reset_send
from .models import User

logger = logging.getLogger("gatecheck.mail")


class SecretScrubMixin:
    """For every form of the project: every text field (any CharField) goes
    through the one secret detector, on the raw value as typed, before any
    other validation runs. So a refusal never depends on which error comes
    first: an over-long secret is refused as a secret too, and no error page
    echoes it. A refused value gets an error with code "secret" and is blanked
    before the form is shown again; so is a value another check refused with
    that code.

    ``secret_exempt`` names fields whose value is never stored or shown
    again (a password, a one-time code): they are checked against the account
    and dropped.

    The same fields also refuse what the inventory importer refuses in text
    (readiness.validators.text_problem): control characters, lone surrogates
    and direction overrides; line breaks only in a Textarea.
    """

    secret_exempt: tuple[str, ...] = ()
    # What to say instead of the general advice when a field's value looks
    # like a secret (a fingerprint field is asked for a part of one).
    secret_messages: dict[str, str] = {}

    def secret_checked_fields(self) -> list[str]:
        return [
            name for name, field in self.fields.items() if isinstance(field, forms.CharField) and name not in self.secret_exempt
        ]

    def full_clean(self):
        refused: dict[str, ValidationError] = {}
        if self.is_bound:
            for name in self.secret_checked_fields():
                raw = self.fields[name].widget.value_from_datadict(self.data, self.files, self.add_prefix(name))
                if not isinstance(raw, str):
                    continue
                reason = find_secret(raw)
                if reason:
                    refused[name] = ValidationError(self.secret_messages.get(name) or secret_message(reason), code="secret")
                elif problem := text_problem(raw, multiline=isinstance(self.fields[name].widget, forms.Textarea)):
                    # Refused before any other check sees it: a lone surrogate
                    # or NUL would make a database query fail.
                    refused[name] = ValidationError(problem, code="text")
            if refused:
                self.data = self.data.copy()
                for name in refused:
                    self.data[self.add_prefix(name)] = ""
        super().full_clean()
        for name, error in refused.items():
            self._errors.pop(name, None)
            self.add_error(name, error)
        later = [
            name
            for name, errors in self.errors.as_data().items()
            if name in self.fields and name not in refused and any(error.code == "secret" for error in errors)
        ]
        if later:
            self.data = self.data.copy()
            for name in later:
                self.data[self.add_prefix(name)] = ""


class LoginForm(SecretScrubMixin, forms.Form):
    # Neither is stored: failures are counted under a keyed digest of the
    # username, which may be a password typed in the wrong field.
    secret_exempt = ("username", "password")

    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class CodeField(forms.CharField):
    """A one-time code as people type it: spaces (and a "123 456" grouping)
    are dropped before any check, so no message ever depends on them."""

    def to_python(self, value):
        return "".join(str(value or "").split())


class CodeForm(SecretScrubMixin, forms.Form):
    secret_exempt = ("otp_token",)  # checked against the devices, never stored

    otp_token = CodeField(
        label="Authentication code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )


class LoginCodeForm(CodeForm):
    """The code step, with "Trust this browser" where it is offered
    (``trust_hours`` None: not offered, e.g. to administrators)."""

    trust_browser = forms.BooleanField(required=False)

    def __init__(self, *args, trust_hours: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if trust_hours is None:
            del self.fields["trust_browser"]
            return
        days = int(trust_hours // 24)
        span = f"{days} days" if days >= 2 else f"{int(trust_hours)} hours"
        field = self.fields["trust_browser"]
        field.label = f"Trust this browser for {span}"
        field.help_text = "Skips the code here, never the password. Not on a shared or public computer. You can remove it on your security page."


class EnrolmentCodeForm(SecretScrubMixin, forms.Form):
    secret_exempt = ("code",)  # checked against its hash, never stored

    code = CodeField(
        label="Enrolment code",
        max_length=32,
        help_text="The code your desk lead gave you after resetting your two-factor sign-in, e.g. ABCD-EFGH-JKLM-NPQR.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True, "spellcheck": "false", "autocapitalize": "characters"}),
    )


class EnrolForm(SecretScrubMixin, forms.Form):
    secret_exempt = ("otp_token",)  # checked against the new device, never stored

    name = forms.CharField(
        label="Name this authenticator",
        max_length=64,
        initial="Authenticator app",
        help_text="So you can tell your authenticators apart, e.g. 'Phone' or 'YubiKey'.",
    )
    otp_token = CodeField(
        label="Code from the app",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}"}),
    )

    def code_refused(self, message: str) -> None:
        """A wrong code: the error, and an empty field for the next code
        (the wrong one shown again would only be typed over)."""
        self.add_error("otp_token", message)
        self.data = self.data.copy()
        self.data[self.add_prefix("otp_token")] = ""


class RenameForm(SecretScrubMixin, forms.Form):
    name = forms.CharField(max_length=64, label="New name")


class SignupForm(SecretScrubMixin, UserCreationForm):
    secret_exempt = ("password1", "password2")  # stored only as a slow hash

    email = forms.EmailField(help_text="Security notices (a new authenticator, a password change) go here.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class InvitationAcceptForm(SecretScrubMixin, UserCreationForm):
    """A new account for an invited address: the address is the invitation's."""

    secret_exempt = ("password1", "password2")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "last_name")

    def __init__(self, *args, invitation, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("username", invitation.email.split("@")[0])
        for name in ("first_name", "last_name"):
            self.fields[name].required = True


class EmailChangeForm(SecretScrubMixin, forms.Form):
    email = forms.EmailField(
        label="New e-mail address",
        help_text="We send a link there; notices go to it once you follow the link.",
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
    )

    def __init__(self, *args, owner: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"])
        if email == self.owner.email:
            raise ValidationError("That is already your address.")
        return email


class ResetMfaForm(SecretScrubMixin, forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="How you confirmed the trader's identity out of band (e.g. 'video call, ID checked').",
    )


class QueuedPasswordResetForm(SecretScrubMixin, PasswordResetForm):
    """Django's reset form, with the e-mail sent by the background worker.

    Only the account and the templates travel in the task; the worker makes
    the link, so the task table never holds one that works, and the page
    answers as fast for a known address as for an unknown one."""

    def send_mail(self, subject_template_name, email_template_name, context, from_email, to_email, html_email_template_name=None):
        try:
            password_reset_send.enqueue(
                context["user"].pk, context["domain"], context["site_name"], context["protocol"] == "https", subject_template_name, email_template_name
            )
        except Exception:
            # As for any e-mail: logged, never an error page (and never a
            # different page for a known address).
            logger.exception("Could not queue a password-reset e-mail")


class ApiTokenForm(SecretScrubMixin, forms.Form):
    """A new API token: what it is for, what it may do and how long it lives
    (the rules themselves are in accounts.tokens, which says why it refuses)."""

    name = forms.CharField(max_length=tokens.NAME_MAX, help_text="What will use it, such as \"deploy pipeline\".")
    scope = forms.ChoiceField(widget=forms.RadioSelect)
    days = forms.IntegerField(
        label="Valid for (days)", min_value=1, max_value=tokens.MAX_DAYS, initial=tokens.DEFAULT_DAYS,
        help_text=f"At most {tokens.MAX_DAYS} days; make a new token before it ends.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = [(code, f"{code}: {text}") for code, text in tokens.scopes_for(owner).items()]
        self.fields["scope"].initial = "read"


class AlertChannelForm(SecretScrubMixin, forms.Form):
    """A new alert channel: an apprise URL (a credential: never echoed back
    after an error), a name, and the events it gets."""

    # The URL is a credential: checked by apprise, sealed, never shown again in full.
    secret_exempt = ("url",)

    url = forms.CharField(
        label="Apprise URL", max_length=2000, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="As apprise writes it: slack://TokenA/TokenB/TokenC, msteams://..., tgram://bottoken/chatid, ntfy://topic, "
        "pover://user@token, json://host/path, mailto://...",
    )
    name = forms.CharField(max_length=100, required=False, help_text="Your own label, e.g. \"Desk Slack\".")
    events = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, initial=list(channels.DEFAULT_EVENTS),
                                       choices=list(channels.EVENTS.items()))


class AlertEventsForm(forms.Form):
    events = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, choices=list(channels.EVENTS.items()))
