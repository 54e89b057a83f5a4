"""Production settings for the gunicorn that ``bench/run.py`` starts on
loopback: the bench's URL conf (the bare view) on the bench's database.
The environment (DATABASE_URL, DJANGO_SECRET_KEY, DJANGO_SSL_REDIRECT=0,
DJANGO_CONN_MAX_AGE) is set by run.py."""

from config.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
