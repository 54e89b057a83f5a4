from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import pre_save


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from . import background  # noqa: F401 (registers the background work's gauges for /metrics)
        from .models import User
        from .services import session_forget
        from .tokens import on_deactivated

        # Every sign-out (the logout button, a timeout, a revoked session)
        # removes the browser's row with its session.
        user_logged_out.connect(session_forget, dispatch_uid="accounts_session_forget")
        # A person deactivated by any path (the admin, SCIM, a command) loses every API token.
        pre_save.connect(on_deactivated, sender=User, dispatch_uid="accounts_tokens_on_deactivated")
