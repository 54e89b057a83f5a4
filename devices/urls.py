from django.urls import path, re_path

from . import views

app_name = "devices"

urlpatterns = [
    path("devices/", views.device_list, name="device_list"),
    path("devices/add/", views.device_add, name="device_add"),
    path("devices/<int:pk>/edit/", views.device_edit, name="device_edit"),
    path("devices/<int:pk>/delete/", views.device_delete, name="device_delete"),
    path("devices/<int:pk>/lost/", views.device_report_lost, name="device_report_lost"),
    path("devices/<int:pk>/revoked/", views.device_mark_revoked, name="device_mark_revoked"),
    path("devices/<int:pk>/found/", views.device_mark_found, name="device_mark_found"),
    path("devices/<int:pk>/validated/", views.device_mark_validated, name="device_mark_validated"),
    path("recovery/", views.recovery_list, name="recovery_list"),
    path("recovery/add/", views.recovery_add, name="recovery_add"),
    path("recovery/<int:pk>/edit/", views.recovery_edit, name="recovery_edit"),
    path("recovery/<int:pk>/delete/", views.recovery_delete, name="recovery_delete"),
    path("recovery/<int:pk>/verified/", views.recovery_mark_verified, name="recovery_mark_verified"),
    path("keys/", views.key_list, name="key_list"),
    path("keys/add/", views.key_add, name="key_add"),
    path("keys/<int:pk>/edit/", views.key_edit, name="key_edit"),
    path("keys/<int:pk>/delete/", views.key_delete, name="key_delete"),
    path("keys/<int:pk>/rotated/", views.key_mark_rotated, name="key_mark_rotated"),
    path("keys/<int:pk>/revoke/", views.key_revoke, name="key_revoke"),
    path("automations/", views.automation_list, name="automation_list"),
    path("automations/add/", views.automation_add, name="automation_add"),
    path("automations/<int:pk>/edit/", views.automation_edit, name="automation_edit"),
    path("automations/<int:pk>/delete/", views.automation_delete, name="automation_delete"),
    path("automations/<int:pk>/pause/", views.automation_pause, name="automation_pause"),
    path("automations/<int:pk>/resume/", views.automation_resume, name="automation_resume"),
    path("automations/<int:pk>/heartbeat/", views.automation_heartbeat, name="automation_heartbeat"),
    path("automations/<int:pk>/heartbeat/rotate/", views.automation_heartbeat_rotate, name="automation_heartbeat_rotate"),
    path("automations/<int:pk>/heartbeat/address/", views.automation_heartbeat_token, name="automation_heartbeat_token"),
    path("automations/<int:pk>/heartbeat/delete/", views.automation_heartbeat_delete, name="automation_heartbeat_delete"),
    path("automations/ping-key/", views.ping_key_rotate, name="ping_key_rotate"),
    path("automations/ping-key/new/", views.ping_key_shown, name="ping_key_shown"),
    path("ack/<str:token>/", views.incident_ack, name="incident_ack"),
    path("ping/<str:token>", views.ping, name="ping"),
    path("ping/<str:token>/fail", views.ping_fail, name="ping_fail"),
    # Every other ping URL: suffixes, a trailing slash, a ping key and slug.
    re_path(r"^ping/(?P<path>.+)$", views.ping_any, name="ping_any"),
]
