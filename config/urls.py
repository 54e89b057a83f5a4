"""Top-level routes. /admin/ is django-otp's OTPAdminSite; the default admin site is not routed."""

from django.urls import include, path

from accounts.admin import admin_site
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
    path("", include("devices.urls")),
    path("desk/", include("desk.urls")),
    path("", include("checklist.urls")),
]
