"""Top-level routes. /admin/ is django-otp's OTPAdminSite; the default admin site is not routed."""

from django.urls import include, path

from accounts.admin import admin_site
from accounts.views import background_status, healthz, metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("background/", background_status, name="background"),
    path("accounts/", include("accounts.urls")),
    path("accounts/passkeys/", include("accounts.passkey_urls")),
    path("admin/", admin_site.urls),
    path("", include("devices.urls")),
    path("desk/", include("desk.urls")),
    path("", include("checklist.urls")),
]
