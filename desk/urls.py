from django.urls import path

from . import views

app_name = "desk"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export.csv", views.export_csv, name="export"),
    path("traders/<int:pk>/", views.trader_view, name="trader_detail"),
    path("traders/<int:pk>/remind/", views.trader_remind, name="trader_remind"),
    path("incidents/<int:pk>/ack/", views.incident_ack, name="incident_ack"),
    path("traders/<int:pk>/mfa-reset/", views.trader_mfa_reset, name="trader_mfa_reset"),
    path("traders/<int:pk>/mfa-reset/code/", views.trader_enrolment_code, name="trader_enrolment_code"),
]
