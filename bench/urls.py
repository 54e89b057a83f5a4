"""The bench's routes: the project's own, plus one view that does nothing.

Used only by ``bench/run.py`` (in-process) and the gunicorn it starts
(``bench.settings``); production's ``config.urls`` has no such endpoint.
"""

from django.http import HttpResponse
from django.urls import include, path

from accounts.decorators import public


@public
def bare(request):
    """The yardstick: behind every middleware, no work of its own. Public so
    that a client without a session (a bot, wrk) reaches it as it reaches a
    ping; a signed-in client still pays for its session here."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("bench/bare/", bare), path("", include("config.urls"))]
