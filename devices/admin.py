"""The inventory in the admin panel: devices, recovery methods, API keys,
automations, profiles, market data, drills and accepted risks.

Leads see their desks' rows read-only (accounts.admin.DeskScopedAdmin);
notes, key fingerprints and full phone numbers or addresses never reach them.
"""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import DeskFilter, InventoryAdmin, admin_site
from readiness.masking import mask_label, mask_text

from .models import AcceptedRisk, ApiKey, Automation, Drill, RecoveryMethod, Subscription, TradingProfile, TrustedDevice


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


@admin.register(TradingProfile, site=admin_site)
class TradingProfileAdmin(InventoryAdmin):
    lead_masked = {"support_contact": "masked_support_contact"}
    list_display = ("owner", "broker", "broker_mfa", "regions", "plan_complex_orders", "plan_transfers_statements", "plan_alerts_light_execution")
    list_filter = (DeskFilter, "broker_mfa", "broker")
    readonly_fields = ("updated_at",)

    @admin.display(description="regions traded")
    def regions(self, obj: TradingProfile) -> str:
        return ", ".join(obj.regions_traded or ())

    @admin.display(description="support contact")
    def masked_support_contact(self, obj: TradingProfile) -> str:
        return mask_text(obj.support_contact)


@admin.register(Subscription, site=admin_site)
class SubscriptionAdmin(InventoryAdmin):
    list_display = ("feed", "owner", "region", "active")
    list_filter = (DeskFilter, "region", "active")
    search_fields = ("feed", *InventoryAdmin.search_fields)
    readonly_fields = ("created_at", "updated_at")


@admin.register(Drill, site=admin_site)
class DrillAdmin(InventoryAdmin):
    list_display = ("owner", "lost_device", "started_at", "finished_at", "completed")
    list_filter = (DeskFilter, "completed")
    search_fields = ("lost_device", *InventoryAdmin.search_fields)
    date_hierarchy = "started_at"


@admin.register(AcceptedRisk, site=admin_site)
class AcceptedRiskAdmin(InventoryAdmin):
    lead_masked = {"reason": "masked_reason"}
    list_display = ("rule", "owner", "until", "reason", "created_on")
    list_filter = (DeskFilter, "rule")
    readonly_fields = ("created_on",)

    @admin.display(description="reason")
    def masked_reason(self, obj: AcceptedRisk) -> str:
        return mask_text(obj.reason)
