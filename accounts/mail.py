"""The one place Gatecheck hands an e-mail to the mail server.

Every security notice, reminder and digest goes through :func:`mail_send`, so
that a mail outage never fails the request (or the nightly run) that caused
the message: the failure is logged, the caller learns it from the return
value and decides whether to try again later (reminders drop their daily
claim, so the next run sends them). Django's password-reset form does the
same on its own. Queueing mail as a task replaces this one function.
"""

from __future__ import annotations

import logging

from django.core.mail import EmailMessage

logger = logging.getLogger("gatecheck.mail")


def mail_send(message: EmailMessage, *, kind: str) -> bool:
    """Send ``message``; True when the server took it. Never raises: a
    failure is logged by kind only (no address, no body)."""
    try:
        message.send()
    except Exception:
        logger.exception("mail: sending a %s e-mail failed", kind)
        return False
    return True
