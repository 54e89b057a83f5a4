"""The desk's parts of the admin panel: users with their readiness and the
lead's actions (export, reminders, MFA reset), and the reminder log.

They live here, not in accounts.admin, because they read stored scores and
call desk services; the admin site itself stays in accounts.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin
from django.db.models import F, Prefetch
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts import services as account_services
from accounts.admin import DeskFilter, DeskScopedAdmin, admin_site
from accounts.models import User
from accounts.selectors import desks_for
from readiness.masking import mask_email
from readiness.vocabulary import LEVEL_LABELS

from .models import ReminderLog
from .services import Sent, reminder_send


class LevelFilter(admin.SimpleListFilter):
    title = "readiness level"
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return [*LEVEL_LABELS.items(), ("none", "Not scored")]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(readiness_level__isnull=True)
        if value in LEVEL_LABELS:
            return queryset.filter(readiness_level=value)
        return queryset


# --------------------------------------------------------------------------
# Users
# --------------------------------------------------------------------------


@admin.register(User, site=admin_site)
class GatecheckUserAdmin(DeskScopedAdmin, UserAdmin):
    owner_field = ""
    lead_hidden = ("password", "groups", "user_permissions", "is_superuser", "is_staff")
    lead_masked = {"email": "masked_email"}
    list_display = (
        "username", "full_name", "email", "desk_names", "readiness_score", "readiness_level", "is_staff", "is_active", "last_login"
    )
    list_filter = (DeskFilter, LevelFilter, "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "first_name", "last_name", "email")
    ordering = ("username",)
    actions = ("export_readiness", "send_reminders", "reset_mfa", "remove_from_desk", "deactivate")
    lead_fieldsets = (
        (None, {"fields": ("username", "first_name", "last_name", "masked_email", "is_active")}),
        ("Desk and readiness", {"fields": ("desk_names", "readiness_score", "readiness_level")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )

    def get_queryset(self, request):
        # The current-score row: one join, whatever the history's length.
        return (
            super()
            .get_queryset(request)
            .annotate(readiness_score=F("current_score__score"), readiness_level=F("current_score__level"))
            # Only the desks the viewer oversees: a trader on two desks does
            # not reveal the other desk to this lead.
            .prefetch_related(Prefetch("desks", queryset=desks_for(request.user)))
        )

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return self.lead_fieldsets

    def user_change_password(self, request, id, form_url=""):
        # A password set here is a password change like any other: the same
        # service ends the user's other sessions, voids the calendar token,
        # audits and e-mails. accounts.policy asks for a fresh code first.
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302 and response["Location"] != request.get_full_path():
            account_services.password_changed(request=request, user=self.get_object(request, unquote(id)))
        return response

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if not request.user.is_superuser:
            fields = [*fields, "desk_names", "readiness_score", "readiness_level"]
        return fields

    @admin.display(description="name", ordering="last_name")
    def full_name(self, obj: User) -> str:
        return obj.get_full_name()

    @admin.display(description="e-mail")
    def masked_email(self, obj: User) -> str:
        return mask_email(obj.email) if obj.email else ""

    @admin.display(description="desks")
    def desk_names(self, obj: User) -> str:
        return ", ".join(desk.name for desk in obj.desks.all())

    @admin.display(description="score", ordering="readiness_score")
    def readiness_score(self, obj: User):
        return getattr(obj, "readiness_score", None)

    @admin.display(description="level", ordering="readiness_level")
    def readiness_level(self, obj: User) -> str:
        return LEVEL_LABELS.get(getattr(obj, "readiness_level", None) or "", "not scored")

    @admin.action(description="Export selected traders' readiness as CSV", permissions=["view"])
    def export_readiness(self, request, queryset):
        # One export path for the desk page and the admin: it asks for a fresh
        # code, writes the audit event and applies the same scoping.
        ids = list(queryset.values_list("pk", flat=True))
        return HttpResponseRedirect(f"{reverse('desk:export')}?{urlencode([('trader', pk) for pk in ids])}")

    @admin.action(description="E-mail selected traders a reminder", permissions=["view"])
    def send_reminders(self, request, queryset):
        results = [reminder_send(request=request, trader=user, as_of=timezone.localdate()) for user in queryset]
        sent = results.count(Sent.SENT)
        skipped = len(results) - sent
        self.message_user(request, f"Sent {sent} reminder(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} skipped: already reminded today or no verified e-mail address.", messages.WARNING)

    @admin.action(description="Reset two-factor authentication (one trader)", permissions=["view"])
    def reset_mfa(self, request, queryset):
        users = list(queryset[:2])
        if len(users) != 1:
            self.message_user(request, "Select exactly one trader to reset.", messages.ERROR)
            return None
        # The desk page asks for the reason, the lead's fresh code and checks
        # who may reset whom.
        return HttpResponseRedirect(reverse("desk:trader_mfa_reset", args=[users[0].pk]))

    # Removing and deactivating go through the desk's pages too: a
    # confirmation, a fresh code, the same rule of who may act on whom, and
    # for a leaver the same offboarding and checklist.
    @admin.action(description="Remove from my desk (one trader)", permissions=["view"])
    def remove_from_desk(self, request, queryset):
        return self._one_to(request, queryset, "desk:trader_remove")

    @admin.action(description="Deactivate (one trader): end their access, open a leaver checklist", permissions=["view"])
    def deactivate(self, request, queryset):
        return self._one_to(request, queryset, "desk:trader_deactivate")

    def _one_to(self, request, queryset, view: str):
        users = list(queryset[:2])
        if len(users) != 1:
            self.message_user(request, "Select exactly one trader.", messages.ERROR)
            return None
        return HttpResponseRedirect(reverse(view, args=[users[0].pk]))

    def save_model(self, request, obj, form, change):
        # A superuser unticking "active": the offboarding knows who did it.
        if change and "is_active" in form.changed_data and not obj.is_active:
            obj._offboarding = {"by": request.user, "request": request, "via": "admin"}
        super().save_model(request, obj, form, change)



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
