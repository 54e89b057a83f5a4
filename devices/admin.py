"""Devices, recovery methods, API keys and automations in the admin panel.

Leads see their desks' rows read-only (accounts.admin.DeskScopedAdmin);
notes, key fingerprints and full phone numbers or addresses never reach them.
"""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import DeskFilter, InventoryAdmin, admin_site
from readiness.masking import mask_label, mask_text

from .models import ApiKey, Automation, RecoveryMethod, TrustedDevice


@admin.register(TrustedDevice, site=admin_site)
class TrustedDeviceAdmin(InventoryAdmin):
    lead_hidden = ("notes",)
    list_display = ("name", "owner", "kind", "status", "validated_on", "browser_saved_password")
    list_filter = (DeskFilter, "kind", "status", "browser_saved_password")
    search_fields = ("name", *InventoryAdmin.search_fields)
    readonly_fields = ("created_at", "updated_at")


@admin.register(RecoveryMethod, site=admin_site)
class RecoveryMethodAdmin(InventoryAdmin):
    lead_masked = {"label": "masked_label"}
    mask_for_everyone = True
    list_display = ("label", "owner", "kind", "last_verified_on")
    list_filter = (DeskFilter, "kind")
    search_fields = ("label", *InventoryAdmin.search_fields)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="label")
    def masked_label(self, obj: RecoveryMethod) -> str:
        return mask_label(obj.kind, obj.label)


@admin.register(ApiKey, site=admin_site)
class ApiKeyAdmin(InventoryAdmin):
    lead_hidden = ("fingerprint",)
    list_display = ("label", "owner", "status", "service_account", "scope_list", "created_on", "last_rotated_on", "expires_on", "ip_restricted")
    list_filter = (DeskFilter, "status", "service_account", "ip_restricted")
    search_fields = ("label", *InventoryAdmin.search_fields)
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiKey) -> str:
        return ", ".join(obj.scopes or ())


@admin.register(Automation, site=admin_site)
class AutomationAdmin(InventoryAdmin):
    lead_masked = {"fallback_contact": "masked_fallback_contact"}
    list_display = ("name", "owner", "status", "api_key", "token_refresh", "on_auth_failure", "fallback_contact")
    list_filter = (DeskFilter, "status", "on_auth_failure", "token_refresh")
    list_select_related = ("owner", "api_key")
    search_fields = ("name", *InventoryAdmin.search_fields)
    readonly_fields = ("created_at", "updated_at")
    raw_id_fields = ("api_key",)

    @admin.display(description="fallback contact")
    def masked_fallback_contact(self, obj: Automation) -> str:
        return mask_text(obj.fallback_contact)
