from django.urls import path

from . import views

app_name = "checklist"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("profile/", views.profile, name="profile"),
    path("profile/calendar/", views.calendar_rotate, name="calendar_rotate"),
    path("profile/calendar/off/", views.calendar_revoke, name="calendar_revoke"),
    path("profile/calendar/address/", views.calendar_token, name="calendar_token"),
    path("calendar.ics", views.calendar_feed, name="calendar_feed"),
    path("subscriptions/", views.subscription_list, name="subscription_list"),
    path("subscriptions/add/", views.subscription_add, name="subscription_add"),
    path("subscriptions/<int:pk>/edit/", views.subscription_edit, name="subscription_edit"),
    path("subscriptions/<int:pk>/delete/", views.subscription_delete, name="subscription_delete"),
    path("drills/", views.drill_list, name="drill_list"),
    path("drills/start/", views.drill_start, name="drill_start"),
    path("drills/<int:pk>/", views.drill_detail, name="drill_detail"),
    path("drills/<int:pk>/step/", views.drill_step, name="drill_step"),
    path("drills/<int:pk>/finish/", views.drill_finish, name="drill_finish"),
    path("drills/<int:pk>/abandon/", views.drill_abandon, name="drill_abandon"),
    path("permissions/", views.permission_list, name="permission_list"),
    path("permissions/add/", views.permission_add, name="permission_add"),
    path("permissions/<int:pk>/edit/", views.permission_edit, name="permission_edit"),
    path("permissions/<int:pk>/delete/", views.permission_delete, name="permission_delete"),
    path("risks/", views.risk_list, name="risk_list"),
    path("risks/accept/", views.risk_accept, name="risk_accept"),
    path("risks/<int:pk>/withdraw/", views.risk_withdraw, name="risk_withdraw"),
    path("recovery-card/", views.recovery_card, name="recovery_card"),
    path("api/readiness/", views.api_readiness, name="api_readiness"),
    path("api/inventory/", views.api_inventory, name="api_inventory"),
    path("inventory/export/", views.inventory_export, name="inventory_export"),
    path("inventory/import/", views.inventory_import, name="inventory_import"),
    path("inventory/import/confirm/", views.inventory_import_confirm, name="inventory_import_confirm"),
]
