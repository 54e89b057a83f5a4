from django.urls import path

from . import people_views, views

app_name = "desk"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export.csv", views.export_csv, name="export"),
    path("traders/<int:pk>/", views.trader_view, name="trader_detail"),
    path("traders/<int:pk>/remind/", views.trader_remind, name="trader_remind"),
    path("incidents/<int:pk>/ack/", views.incident_ack, name="incident_ack"),
    path("traders/<int:pk>/mfa-reset/", views.trader_mfa_reset, name="trader_mfa_reset"),
    path("traders/<int:pk>/mfa-reset/code/", views.trader_enrolment_code, name="trader_enrolment_code"),
    path("traders/<int:pk>/remove/", people_views.trader_remove, name="trader_remove"),
    path("traders/<int:pk>/deactivate/", people_views.trader_deactivate, name="trader_deactivate"),
    path("invitations/", people_views.invitations_list, name="invitations"),
    path("invitations/new/", people_views.invite, name="invite"),
    path("invitations/<int:pk>/resend/", people_views.invitation_resend, name="invitation_resend"),
    path("invitations/<int:pk>/revoke/", people_views.invitation_revoke, name="invitation_revoke"),
    path("leavers/", people_views.leavers_list, name="leavers"),
    path("leavers/items/<int:pk>/done/", people_views.leaver_item_done, name="leaver_item_done"),
]
