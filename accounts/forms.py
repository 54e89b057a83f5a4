"""Forms for sign-in, enrolment and account security."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError

from readiness.secrets import find_secret, secret_message

from .models import User


def validate_no_secret(value: str) -> None:
    """Form and model validator for every free-text field."""
    reason = find_secret(value or "")
    if reason:
        raise ValidationError(secret_message(reason), code="secret")


class SecretScrubMixin:
    """For forms: a value refused as a secret (an error with code "secret") is
    blanked before the form is shown again, so the page never echoes it."""

    def full_clean(self):
        super().full_clean()
        refused = [
            name
            for name, errors in self.errors.as_data().items()
            if name in self.fields and any(error.code == "secret" for error in errors)
        ]
        if refused:
            self.data = self.data.copy()
            for name in refused:
                self.data[self.add_prefix(name)] = ""


class LoginForm(forms.Form):
    username = forms.CharField(max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}))
    password = forms.CharField(strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class CodeForm(forms.Form):
    otp_token = forms.CharField(
        label="Authentication code",
        max_length=32,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )


class EnrolForm(forms.Form):
    name = forms.CharField(
        label="Name this authenticator",
        max_length=64,
        initial="Authenticator app",
        help_text="So you can tell your authenticators apart, e.g. 'Phone' or 'YubiKey'.",
    )
    otp_token = forms.CharField(
        label="Code from the app",
        max_length=6,
        min_length=6,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}"}),
    )


class RenameForm(forms.Form):
    name = forms.CharField(max_length=64, label="New name")


class SignupForm(UserCreationForm):
    email = forms.EmailField(help_text="Security notices (a new authenticator, a password change) go here.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class ResetMfaForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="How you confirmed the trader's identity out of band (e.g. 'video call, ID checked').",
    )
