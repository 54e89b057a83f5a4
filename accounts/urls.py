from django.urls import path

from . import passkey_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("login/code/", views.login_code, name="login_code"),
    path("logout/", views.logout_view, name="logout"),
    path("login/not-me/<str:token>/", views.not_me, name="not_me"),
    path("signup/", views.signup, name="signup"),
    path("mfa/setup/", views.mfa_setup, name="mfa_setup"),
    path("mfa/confirm/", views.step_up, name="step_up"),
    path("security/", views.security, name="security"),
    path("security/authenticators/add/", views.authenticator_add, name="authenticator_add"),
    path("security/authenticators/<int:pk>/rename/", views.authenticator_rename, name="authenticator_rename"),
    path("security/authenticators/<int:pk>/remove/", views.authenticator_remove, name="authenticator_remove"),
    path("security/passkeys/add/", passkey_views.passkey_add, name="passkey_add"),
    path("security/passkeys/<int:pk>/rename/", passkey_views.passkey_rename, name="passkey_rename"),
    path("security/passkeys/<int:pk>/remove/", passkey_views.passkey_remove, name="passkey_remove"),
    path("security/backup-codes/", views.backup_codes_regenerate, name="backup_codes"),
    path("security/backup-codes/new/", views.backup_codes_shown, name="backup_codes_shown"),
    path("security/sessions/<int:pk>/end/", views.session_end, name="session_end"),
    path("security/sessions/end-others/", views.sessions_end_others, name="sessions_end_others"),
    path("alerts/", views.alerts, name="alerts"),
    path("alerts/add/", views.alert_channel_add, name="alert_channel_add"),
    path("alerts/<int:pk>/test/", views.alert_channel_test, name="alert_channel_test"),
    path("alerts/<int:pk>/events/", views.alert_channel_events, name="alert_channel_events"),
    path("alerts/<int:pk>/remove/", views.alert_channel_remove, name="alert_channel_remove"),
    path("security/api-tokens/add/", views.api_token_add, name="api_token_add"),
    path("security/api-tokens/new/", views.api_token_shown, name="api_token_shown"),
    path("security/api-tokens/<int:pk>/revoke/", views.api_token_revoke, name="api_token_revoke"),
    path("security/trusted-browsers/<int:pk>/forget/", views.trusted_browser_forget, name="trusted_browser_forget"),
    path("password/change/", views.password_change, name="password_change"),
    path("email/change/", views.email_change, name="email_change"),
    path("email/verify/send/", views.email_verification_resend, name="email_verification_resend"),
    path("email/banner/hide/", views.email_banner_hide, name="email_banner_hide"),
    path("email/verify/<str:token>/", views.email_verify, name="email_verify"),
    path("password/reset/", views.password_reset, name="password_reset"),
    path("password/reset/sent/", views.password_reset_done, name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", views.password_reset_confirm, name="password_reset_confirm"),
    path("password/reset/done/", views.password_reset_complete, name="password_reset_complete"),
]
