from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from . import background  # noqa: F401 (registers the background work's gauges for /metrics)
        from .services import session_forget

        # Every sign-out (the logout button, a timeout, a revoked session)
        # removes the browser's row with its session.
        user_logged_out.connect(session_forget, dispatch_uid="accounts_session_forget")
