"""Profiles, market data, drills, accepted risks and stored scores in the
admin panel, scoped for desk leads (accounts.admin.DeskScopedAdmin)."""

from __future__ import annotations

from django.contrib import admin

from accounts.admin import DeskFilter, InventoryAdmin, admin_site
from readiness.masking import mask_text

from .models import AcceptedRisk, Drill, ReadinessSnapshot, Subscription, TradingProfile


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
