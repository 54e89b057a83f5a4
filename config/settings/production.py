"""Production: DEBUG off, secrets and hosts from the environment, HTTPS only."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOGGING, PRODUCTION_DEFAULTS, SECRET_KEY

DEBUG = False
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set in production.")

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = PRODUCTION_DEFAULTS["SECURE_SSL_REDIRECT"]
# Load balancers probe the health check over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/web$", r"^metrics$"]
SECURE_HSTS_SECONDS = PRODUCTION_DEFAULTS["SECURE_HSTS_SECONDS"]
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# One year, subdomains and preload: the site is HTTPS-only for good.
SECURE_HSTS_PRELOAD = PRODUCTION_DEFAULTS["SECURE_HSTS_PRELOAD"]
# Self sign-up is for trying Gatecheck out; production onboards through the
# desk lead or an administrator unless this is switched on.
GATECHECK_SIGNUP_OPEN = PRODUCTION_DEFAULTS["GATECHECK_SIGNUP_OPEN"]
# One JSON object per log line unless GATECHECK_LOG_FORMAT says otherwise.
LOGGING["handlers"]["console"]["formatter"] = PRODUCTION_DEFAULTS["LOG_FORMAT"]
