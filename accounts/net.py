"""Client address, taken only from settings we trust."""

from __future__ import annotations

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger("gatecheck.security")


def client_ip(request: HttpRequest) -> str | None:
    """The client's IP address.

    X-Forwarded-For is read only when GATECHECK_TRUSTED_PROXY_COUNT says how
    many proxies we run; then the address our outermost proxy saw is taken
    from the right, so a client cannot choose its own address by sending the
    header itself.
    """
    candidate = request.META.get("REMOTE_ADDR", "")
    proxies = settings.GATECHECK_TRUSTED_PROXY_COUNT
    if proxies > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= proxies:
            candidate = hops[-proxies]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class ProxyHeaderCheckMiddleware:
    """Warn once per process, on the first request after start-up that carries
    X-Forwarded-For while GATECHECK_TRUSTED_PROXY_COUNT is 0.

    Behind a proxy with the count left at 0, every client shares the proxy's
    address: the per-address sign-in cap then locks everyone out together,
    and audit rows name the proxy instead of the client.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.warned = settings.GATECHECK_TRUSTED_PROXY_COUNT > 0

    def __call__(self, request):
        if not self.warned and request.META.get("HTTP_X_FORWARDED_FOR"):
            self.warned = True
            logger.warning(
                "Requests carry X-Forwarded-For but GATECHECK_TRUSTED_PROXY_COUNT is 0: the header is ignored and every "
                "client is seen as %s. Behind a proxy, set GATECHECK_TRUSTED_PROXY_COUNT to the number of proxies.",
                request.META.get("REMOTE_ADDR"),
            )
        return self.get_response(request)


def site_base() -> str:
    """The site's address for links made without a request (a command, the
    worker): GATECHECK_SITE_URL, else the address ``make run`` serves."""
    return (settings.GATECHECK_SITE_URL or "http://127.0.0.1:8000").rstrip("/")
