from django.apps import AppConfig
from django.db.models.signals import m2m_changed


class DeskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "desk"

    def ready(self) -> None:
        from accounts.models import Desk

        from .services import on_desk_leads_changed

        # Whoever changes a desk's leads (admin, shell, fixture), the lead's
        # admin access follows.
        m2m_changed.connect(on_desk_leads_changed, sender=Desk.leads.through, dispatch_uid="desk_leads_changed")
