"""Top-level routes. /admin/ is django-otp's OTPAdminSite; the default admin site is not routed."""

from django.urls import include, path, re_path

from accounts.admin import admin_site
from accounts.scim import scim_view
from accounts.views import background_status, healthz, healthz_web, metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("healthz/web", healthz_web, name="healthz_web"),
    path("metrics", metrics_view, name="metrics"),
    path("background/", background_status, name="background"),
    path("accounts/", include("accounts.urls")),
    path("accounts/passkeys/", include("accounts.passkey_urls")),
    path("admin/", admin_site.urls),
    path("api/v1/", include("config.api")),
    re_path(r"^scim/v2(?P<path>/.*)?$", scim_view, name="scim"),
    path("", include("devices.urls")),
    path("desk/", include("desk.urls")),
    path("", include("checklist.urls")),
]
