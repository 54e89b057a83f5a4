"""Client address, taken only from settings we trust."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


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
