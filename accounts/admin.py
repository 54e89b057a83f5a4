"""The admin site: django-otp's OTPAdminSite, so only MFA-verified staff get in."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django_otp.admin import OTPAdminSite

from .models import AuditEvent, Desk, User


class GatecheckAdminSite(OTPAdminSite):
    site_header = "Gatecheck administration"
    site_title = "Gatecheck admin"


admin_site = GatecheckAdminSite(name="admin")


@admin.register(User, site=admin_site)
class GatecheckUserAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "last_login")


@admin.register(Desk, site=admin_site)
class DeskAdmin(admin.ModelAdmin):
    list_display = ("name",)
    filter_horizontal = ("leads", "members")
    search_fields = ("name",)


@admin.register(AuditEvent, site=admin_site)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only for everyone: the log is append-only."""

    list_display = ("at", "action", "outcome", "actor", "subject", "object_label", "ip")
    list_filter = ("outcome", "action")
    search_fields = ("action", "object_label", "actor__username", "subject__username")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
