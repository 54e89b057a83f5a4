from django.apps import AppConfig
from django.db.models.signals import m2m_changed, post_delete, pre_delete


class DeskConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "desk"

    def ready(self) -> None:
        from accounts.models import Desk
        from accounts.signals import user_deactivated

        from .leavers import on_user_deactivated
        from .services import on_desk_deleted, on_desk_deleting, on_desk_leads_changed

        # Whoever changes a desk's leads (admin, shell, fixture), the lead's
        # admin access follows.
        m2m_changed.connect(on_desk_leads_changed, sender=Desk.leads.through, dispatch_uid="desk_leads_changed")
        # Deleting a desk removes its lead rows without an m2m signal.
        pre_delete.connect(on_desk_deleting, sender=Desk, dispatch_uid="desk_deleting")
        post_delete.connect(on_desk_deleted, sender=Desk, dispatch_uid="desk_deleted")
        # A leaver's desks get the list of what to revoke at the broker.
        user_deactivated.connect(on_user_deactivated, dispatch_uid="desk_leaver_checklist")
