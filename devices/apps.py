from django.apps import AppConfig


class DevicesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "devices"

    def ready(self) -> None:
        from accounts import metrics
        from accounts.signals import user_deactivated

        from . import incidents  # noqa: F401 (registers the "I'm on it" links with accounts' mail and channels)
        from .selectors import bots_by_state

        metrics.gauge("bots", "Automations' heartbeats by state (up, down, failing, new).")(bots_by_state)
        user_deactivated.connect(incidents.on_user_deactivated, dispatch_uid="devices_user_deactivated")
