"""The admin site: django-otp's OTPAdminSite, so only MFA-verified staff get in.

Superusers see and edit everything. Desk leads are staff in the "Desk leads"
group (desk.services.lead_access_sync) with view permissions only, and every
model admin here derives from :class:`DeskScopedAdmin`, which narrows each
queryset, filter, search, lookup, autocomplete and raw-id popup to the
traders of the lead's own desks and hides or masks sensitive fields.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import Http404, HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_otp.admin import OTPAdminSite
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from readiness.masking import mask_text

from .audit import record_event
from .decorators import mfa_is_recent
from .models import AuditEvent, Desk, RecoveryCodeDevice, User
from .selectors import desks_for, traders_for
from .signin import code_skipped
from .views import logout_view, safe_next


class GatecheckAdminSite(OTPAdminSite):
    """One sign-in, password change and sign-out for the whole site.

    The accounts views carry the rate limits, lockouts, audit events, step-up
    and session bookkeeping; the admin's own forms would bypass all of them,
    and desk leads (staff) would otherwise get a second way in.
    """

    site_header = "Gatecheck administration"
    site_title = "Gatecheck admin"
    index_template = "admin/gatecheck_index.html"

    def has_permission(self, request):
        # A session whose code step was skipped (a trusted browser, the
        # identity provider's amr) never reaches the admin until a fresh
        # Gatecheck code is given (SECURITY.md 18, 32).
        skipped = code_skipped(request) and not mfa_is_recent(request)
        return super().has_permission(request) and not skipped

    def login(self, request, extra_context=None):
        # Only MFA-verified users get here (accounts.middleware sends the
        # others to the real login), so there is nothing to sign in to.
        if self.has_permission(request):
            return redirect(safe_next(request, default=reverse("admin:index")))
        if super().has_permission(request):
            return redirect(f"{reverse('accounts:step_up')}?{urlencode({'next': safe_next(request, default=reverse('admin:index'))})}")
        raise PermissionDenied

    def logout(self, request, extra_context=None):
        return logout_view(request)

    def password_change(self, request, extra_context=None):
        return redirect("accounts:password_change")

    def password_change_done(self, request, extra_context=None):
        return redirect("accounts:security")


admin_site = GatecheckAdminSite(name="admin")


# --------------------------------------------------------------------------
# Scoping for desk leads
# --------------------------------------------------------------------------


class DeskFilter(admin.SimpleListFilter):
    """Filter by desk, offering only the desks the viewer oversees."""

    title = "desk"
    parameter_name = "desk"

    def __init__(self, request, params, model, model_admin):
        self.owner_field = model_admin.owner_field
        super().__init__(request, params, model, model_admin)

    def lookups(self, request, model_admin):
        return [(str(desk.pk), desk.name) for desk in desks_for(request.user)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if value not in {key for key, _ in self.lookup_choices}:
            return queryset.none()
        path = f"{self.owner_field}{LOOKUP_SEP}desks" if self.owner_field else "desks"
        return queryset.filter(**{path: value}).distinct()


class DeskScopedAdmin(admin.ModelAdmin):
    """Read-only, desk-scoped admin for leads; full admin for superusers.

    ``owner_field`` is the path from the model to the trader ("" for User).
    ``lead_hidden`` fields never reach a lead: not shown, searched, filtered or
    looked up. ``lead_masked`` maps a field to the display method a lead sees
    instead (masked phone or e-mail); the raw field is hidden like the others.
    """

    # Change lists never count a whole table (at 50,000 traders that is
    # the slowest query of the page); the filtered count is enough.
    show_full_result_count = False

    owner_field = "owner"
    lead_hidden: tuple[str, ...] = ()
    lead_masked: dict[str, str] = {}
    # Mask ``lead_masked`` fields for superusers too (recovery phone numbers
    # and addresses are shown whole only on the owner's own edit form).
    mask_for_everyone = False
    # Add every other free-text field of the model to ``lead_masked``: a
    # phone number or address can be typed into any name.
    mask_free_text = False

    def __init__(self, model, admin_site):
        super().__init__(model, admin_site)
        if self.mask_free_text:
            masked = dict(self.lead_masked)
            for field in model._meta.get_fields():
                if (
                    isinstance(field, (models.CharField, models.TextField))
                    and not field.choices
                    and field.name not in self.lead_hidden
                    and field.name not in masked
                ):
                    setattr(self, f"masked_{field.name}", _masked_display(field))
                    masked[field.name] = f"masked_{field.name}"
            self.lead_masked = masked

    # -- rows --------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return self.scope(qs, request.user)

    def scope(self, qs: QuerySet, user: User) -> QuerySet:
        traders = traders_for(user).values("pk")
        if not self.owner_field:
            return qs.filter(pk__in=traders)
        return qs.filter(**{f"{self.owner_field}__in": traders})

    # -- read-only for everyone but superusers -------------------------------

    def has_add_permission(self, request, *args) -> bool:
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    # -- audit: admin writes, and leads' reads ---------------------------------

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record_event(
            action=f"admin.{obj._meta.model_name}.{'changed' if change else 'added'}",
            request=request,
            subject=obj if isinstance(obj, User) else None,
            object_label=str(obj)[:200],
            # Field names only: values may be personal data.
            details={"fields": sorted(form.changed_data)},
        )

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        if form.changed_data and any(f in form.changed_data for f in ("leads", "members", "groups", "user_permissions")):
            record_event(action=f"admin.{form.instance._meta.model_name}.relations_changed", request=request,
                         object_label=str(form.instance)[:200], details={"fields": sorted(form.changed_data)})

    def delete_model(self, request, obj):
        label = str(obj)[:200]
        super().delete_model(request, obj)
        record_event(action=f"admin.{obj._meta.model_name}.deleted", request=request, object_label=label)

    def changelist_view(self, request, extra_context=None):
        if request.user.is_superuser or request.method != "GET":
            return super().changelist_view(request, extra_context)
        return self._audited_read(
            request, "desk.admin_list_viewed", self.model._meta.verbose_name_plural,
            lambda: super(DeskScopedAdmin, self).changelist_view(request, extra_context),
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.user.is_superuser or request.method != "GET":
            return super().change_view(request, object_id, form_url, extra_context)
        return self._audited_read(
            request, "desk.admin_record_viewed", f"{self.model._meta.verbose_name} #{object_id}",
            lambda: super(DeskScopedAdmin, self).change_view(request, object_id, form_url, extra_context),
        )

    def _masks(self, request) -> bool:
        return self.mask_for_everyone or not request.user.is_superuser

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # The record's name shows in the page title and the breadcrumbs.
        if obj is not None and self._masks(request):
            context["subtitle"] = mask_text(str(obj))
            context["original"] = _MaskedName(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None and self._masks(request):
            extra_context = {**(extra_context or {}), "title": f"Change history: {mask_text(str(obj))}", "object": _MaskedName(obj)}
        return super().history_view(request, object_id, extra_context)

    @staticmethod
    def _audited_read(request, action: str, label: str, view):
        """A lead's read, audited once the admin has decided: a record outside
        their desks (a redirect to the index), a refusal or a 404 is a failure."""
        try:
            response = view()
        except (PermissionDenied, Http404):
            record_event(action=action, request=request, object_label=label[:200], outcome=AuditEvent.Outcome.FAILURE)
            raise
        outcome = AuditEvent.Outcome.SUCCESS if response.status_code == 200 else AuditEvent.Outcome.FAILURE
        record_event(action=action, request=request, object_label=label[:200], outcome=outcome)
        return response

    # -- what a lead may see ---------------------------------------------------

    def _lead_blocked(self) -> set[str]:
        return {*self.lead_hidden, *self.lead_masked}

    @staticmethod
    def _first(path: str) -> str:
        return path.lstrip("^=@").split(LOOKUP_SEP)[0]

    def get_list_display(self, request):
        fields = super().get_list_display(request)
        if request.user.is_superuser:
            return [self.lead_masked.get(f, f) for f in fields] if self.mask_for_everyone else fields
        return [self.lead_masked.get(f, f) for f in fields if f not in self.lead_hidden]

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or ())
        if not request.user.is_superuser:
            exclude += sorted(self._lead_blocked())
        elif self.mask_for_everyone:
            exclude += sorted(self.lead_masked)
        return exclude or None

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields = [f for f in fields if f not in self._lead_blocked()] + list(self.lead_masked.values())
        elif self.mask_for_everyone:
            fields = [f for f in fields if f not in self.lead_masked] + list(self.lead_masked.values())
        return fields

    def get_search_fields(self, request):
        fields = super().get_search_fields(request)
        if request.user.is_superuser:
            return fields
        # Searching a hidden field would answer "does any phone contain 555?".
        return [f for f in fields if self._first(f) not in self._lead_blocked()]

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [f for f in filters if not (isinstance(f, str) and self._first(f) in self._lead_blocked())]

    def lookup_allowed(self, lookup, value, request) -> bool:
        if not request.user.is_superuser:
            # Django allows any lookup on a local field (?email__startswith=a),
            # an oracle on hidden values; a lead may only use the list filters.
            allowed = {self.date_hierarchy} if self.date_hierarchy else set()
            for item in self.get_list_filter(request):
                if isinstance(item, type):
                    allowed.add(item.parameter_name)
                else:
                    allowed.add(self._first(item[0] if isinstance(item, (list, tuple)) else item))
            if self._first(lookup) not in allowed:
                return False
        return super().lookup_allowed(lookup, value, request)


class _MaskedName:
    """A record as the admin's templates use it, its name masked."""

    def __init__(self, obj):
        self._obj = obj

    def __getattr__(self, name):
        return getattr(self._obj, name)

    def __str__(self) -> str:
        return mask_text(str(self._obj))


def _masked_display(field):
    @admin.display(description=field.verbose_name)
    def display(obj) -> str:
        return mask_text(getattr(obj, field.name) or "")

    return display


class InventoryAdmin(DeskScopedAdmin):
    """Read-only for everyone, superusers included: an inventory changes only
    through the app, where secrets are refused, every change is audited with
    old and new values and the trader's score is refreshed. Leads see every
    free-text field with phone numbers and addresses masked."""

    mask_free_text = True

    autocomplete_fields = ("owner",)
    list_select_related = ("owner",)
    search_fields = ("owner__username", "owner__first_name", "owner__last_name")

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --------------------------------------------------------------------------
# Desks and the audit log
# --------------------------------------------------------------------------


@admin.register(Desk, site=admin_site)
class DeskAdmin(DeskScopedAdmin):
    list_display = ("name", "lead_names", "member_count")
    filter_horizontal = ("leads", "members")
    search_fields = ("name",)

    def scope(self, qs, user):
        return qs.filter(pk__in=desks_for(user).values("pk"))

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("leads", "members")

    @admin.display(description="leads")
    def lead_names(self, obj: Desk) -> str:
        return ", ".join(user.get_username() for user in obj.leads.all())

    @admin.display(description="traders")
    def member_count(self, obj: Desk) -> int:
        return len(obj.members.all())


@admin.register(AuditEvent, site=admin_site)
class AuditEventAdmin(DeskScopedAdmin):
    """Read-only for everyone: the log is append-only. A lead sees events
    about their desk's traders, without addresses, agents or details."""

    owner_field = "subject"
    lead_hidden = ("ip", "user_agent", "details")
    lead_masked = {"object_label": "masked_object_label"}
    list_display = ("at", "action", "outcome", "actor", "subject", "object_label", "ip")
    list_filter = ("outcome", "action")
    search_fields = ("action", "object_label", "actor__username", "subject__username")
    list_select_related = ("actor", "subject")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="object")
    def masked_object_label(self, obj: AuditEvent) -> str:
        return mask_text(obj.object_label)


# --------------------------------------------------------------------------
# Second factors: superusers only, never a seed or a code hash
# --------------------------------------------------------------------------


class FactorAdmin(admin.ModelAdmin):
    """Which factors a user has, and when they were used. The TOTP key and
    the backup-code hashes are not fields of these admins at all."""

    # Change lists never count a whole table (at 50,000 traders that is
    # the slowest query of the page); the filtered count is enough.
    show_full_result_count = False

    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username", "name")
    list_select_related = ("user",)
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Removing factors goes through the audited MFA reset.
        return False


admin_site.register(TOTPDevice, FactorAdmin)
admin_site.register(WebAuthnCredential, FactorAdmin)


@admin.register(RecoveryCodeDevice, site=admin_site)
class RecoveryCodeDeviceAdmin(FactorAdmin):
    list_display = ("user", "name", "confirmed", "codes_left")
    fields = ("user", "name", "confirmed", "codes_left")
    readonly_fields = fields

    @admin.display(description="unused codes")
    def codes_left(self, obj: RecoveryCodeDevice) -> int:
        return obj.remaining()


@admin.register(Group, site=admin_site)
class GatecheckGroupAdmin(GroupAdmin):

    # Change lists never count a whole table (at 50,000 traders that is
    # the slowest query of the page); the filtered count is enough.
    show_full_result_count = False
    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser
