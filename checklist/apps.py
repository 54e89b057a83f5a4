from django.apps import AppConfig


class ChecklistConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "checklist"

    def ready(self) -> None:
        from django.db.models.signals import m2m_changed

        from accounts.models import Desk
        from accounts.signals import access_revoked
        from devices.signals import inventory_changed

        from . import tallies
        from .services import on_access_revoked, on_desk_members_added, on_inventory_changed

        # The lower apps announce; this app reacts (re-score, void the feed token).
        inventory_changed.connect(on_inventory_changed, dispatch_uid="checklist_inventory_changed")
        access_revoked.connect(on_access_revoked, dispatch_uid="checklist_access_revoked")
        # Desk membership and deletions keep the desks' tallies true.
        tallies.connect()
        m2m_changed.connect(on_desk_members_added, sender=Desk.members.through, dispatch_uid="checklist_desk_members_added")
