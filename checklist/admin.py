"""Stored scores in the admin panel, scoped for desk leads (accounts.admin.DeskScopedAdmin)."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import DeskFilter, InventoryAdmin, admin_site

from .models import ReadinessSnapshot


@admin.register(ReadinessSnapshot, site=admin_site)
class ReadinessSnapshotAdmin(InventoryAdmin):
    """Stored scores are written by the scoring job only."""

    owner_field = "user"
    autocomplete_fields = ()
    list_display = ("user", "date", "score", "level")
    list_filter = (DeskFilter, "level")
    list_select_related = ("user",)
    search_fields = ("user__username", "user__first_name", "user__last_name")
    date_hierarchy = "date"
