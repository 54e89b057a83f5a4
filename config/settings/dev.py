"""Development: DEBUG on, a local secret generated once, mail to the console."""

from __future__ import annotations

import secrets

from .base import *  # noqa: F403
from .base import BASE_DIR, DEV_DEBUG, MAILERS, SECRET_KEY

DEBUG = DEV_DEBUG
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False

_key_file = BASE_DIR / ".secret_key"
if not SECRET_KEY:
    if not _key_file.exists():
        _key_file.write_text(secrets.token_urlsafe(50))
        _key_file.chmod(0o600)
    SECRET_KEY = _key_file.read_text().strip()

MAILERS["default"] = {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
