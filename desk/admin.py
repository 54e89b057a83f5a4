"""The reminder log in the admin panel: read-only, scoped for desk leads."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import DeskFilter, DeskScopedAdmin, admin_site

from .models import ReminderLog


@admin.register(ReminderLog, site=admin_site)
class ReminderLogAdmin(DeskScopedAdmin):
    owner_field = "recipient"
    list_display = ("date", "kind", "recipient", "sent_by", "item_count", "sent_at")
    list_filter = (DeskFilter, "kind")
    list_select_related = ("recipient", "sent_by")
    search_fields = ("recipient__username",)
    date_hierarchy = "date"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
