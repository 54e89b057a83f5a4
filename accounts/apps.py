from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"

    def ready(self) -> None:
        from . import background  # noqa: F401 (registers the background work's gauges for /metrics)
        from .models import User
        from .offboarding import on_user_saved, on_user_saving
        from .services import session_forget

        # Every sign-out (the logout button, a timeout, a revoked session)
        # removes the browser's row with its session.
        user_logged_out.connect(session_forget, dispatch_uid="accounts_session_forget")
        # A person deactivated by any path (the admin, SCIM, the desk, a
        # command) is offboarded: sessions, tokens, trust and lead rights end.
        pre_save.connect(on_user_saving, sender=User, dispatch_uid="accounts_offboarding_saving")
        post_save.connect(on_user_saved, sender=User, dispatch_uid="accounts_offboarding_saved")
