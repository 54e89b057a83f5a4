"""The WebAuthn API under the namespace the package's template tags reverse
(``otp_webauthn``), routed to our subclasses of its views."""

from django.urls import path

from . import passkey_views

app_name = "otp_webauthn"

urlpatterns = [
    path("registration/begin/", passkey_views.registration_begin, name="credential-registration-begin"),
    path("registration/complete/", passkey_views.registration_complete, name="credential-registration-complete"),
    path("authentication/begin/", passkey_views.authentication_begin, name="credential-authentication-begin"),
    path("authentication/complete/", passkey_views.authentication_complete, name="credential-authentication-complete"),
    path("jsi18n/", passkey_views.javascript_catalog, name="js-i18n-catalog"),
]
