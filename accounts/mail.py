"""How e-mail leaves Gatecheck: from a background task, never inside a request,
and in batches over one mail-server connection.

A mail outage never fails the request (or the nightly run) that caused the
message: the failure is logged by kind only (no address, no body), failed
notices are tried again later, and reminders give back their daily claim so
that the next run sends them.

A message travels to the worker as a plain dict (``payload``), since task
arguments must be JSON. Nothing secret goes into one: a password-reset link,
a "this wasn't me" link and an e-mail confirmation link are made by the
worker (``password_reset_payload``, ``linked_send``), so the task table never
holds a working link.

Whom a message may go to is decided here too (``confirmed_recipients``,
``confirmed_addresses``), for every sender.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives, mailers
from django.db.models import QuerySet
from django.tasks import TaskContext, task
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from . import metrics
from .background import mark_set, stop_point
from .models import JobMark, User, has_verified_email
from .net import site_base

logger = logging.getLogger("gatecheck.mail")


# Security notices, alerts, reminders, digests, heartbeat alerts and reset
# links go only to a confirmed address: an address nobody has proved to own
# (a typo, or someone else's) must not receive the account's news, let alone
# a link that is the account. Every sender asks one of the two functions
# below. The one exception is the confirmation link itself
# (``signin.email_verification_send``): it goes to the unconfirmed address
# because following it is how the address becomes confirmed.


def confirmed_recipients(users: QuerySet[User]) -> QuerySet[User]:
    """The people among ``users`` who may be mailed, for senders that select in bulk."""
    return users.filter(has_verified_email())


def confirmed_addresses(users: Iterable[User]) -> list[str]:
    """The addresses of the people among ``users`` (already loaded) who may
    be mailed, in their order; empty when none may."""
    return [user.email for user in users if user.email_verified]


def payload(*, to: list[str], subject: str, body: str, html: str | None = None, kind: str = "notice", link: list | None = None) -> dict:
    """A message as task arguments can carry it; ``kind`` names it in logs.
    ``link`` names a one-recipient link, ``[maker, ref, recipient id]``
    (``LINK_MAKERS``), made only when the message leaves, so the task table
    never holds a working link."""
    return {"to": list(to), "subject": subject, "body": body, "html": html, "kind": kind, "link": link}


# maker -> (ref, recipient id) -> a new working URL, or None when there is
# nothing left to act on; filled in by the app that owns the link
# (devices.incidents), for e-mail here and for alert channels alike.
LINK_MAKERS: dict[str, Callable[[int, int], str | None]] = {}


def with_link(data: dict) -> dict:
    """The message with its link made now (in the worker), if it names one."""
    if not data.get("link"):
        return data
    maker, ref, recipient = data["link"]
    url = LINK_MAKERS[maker](ref, recipient)
    return {**data, "body": f"{data['body']}\n\nI'm on it: {url}"} if url else data


def notify(user: User, subject: str, body: str) -> bool:
    """Tell a user about a security change by e-mail, if they have a verified address.

    The message is queued for the background worker: the request does not
    wait for the mail server, nor fail with it (the change is already made;
    a failed send is logged and retried by the task). Returns whether a
    message was queued."""
    to = confirmed_addresses([user])
    if not to:
        return False
    body = body + "\n\nIf this was not you, contact your desk lead now."
    return enqueue([payload(to=to, subject=f"[Gatecheck] {subject}", body=body, kind="security notice")])


def message_id(*parts: object) -> str:
    """A Message-ID that is the same each time one message is sent: a run
    taken back from a killed worker may send again the one message that was
    in flight (accepted by the server, not yet recorded), and mail servers
    and clients show a message once per Message-ID. Keyed, so it reveals
    nothing of what it names."""
    digest = salted_hmac("gatecheck.mail.message_id", ":".join(str(p) for p in parts), algorithm="sha256").hexdigest()[:32]
    host = urlsplit(settings.GATECHECK_SITE_URL).hostname or "gatecheck.local"
    return f"<{digest}@{host}>"


def enqueue(payloads: list[dict]) -> bool:
    """Hand messages to the background worker. A request never waits for the
    mail server, and a queue that cannot be reached is logged, never turned
    into an error page: the change the message is about has been made."""
    try:
        mail_send.enqueue(payloads)
    except Exception:
        logger.exception("mail: queueing %d e-mail(s) failed", len(payloads))
        return False
    return True


def _message(data: dict) -> EmailMultiAlternatives:
    headers = {"Message-ID": data["message_id"]} if data.get("message_id") else None
    message = EmailMultiAlternatives(data["subject"], data["body"], None, data["to"], headers=headers)
    if data.get("html"):
        message.attach_alternative(data["html"], "text/html")
    return message


class MailUnavailable(Exception):
    """The mail server could not be reached (refused, or silent past the timeout)."""


@contextmanager
def mail_connection() -> Iterator:
    """One open connection to the mail server, closed afterwards."""
    connection = mailers["default"]
    try:
        connection.open()
    except Exception as error:
        metrics.counter_add("mail_total", outcome="unreachable")
        raise MailUnavailable from error
    try:
        yield connection
    finally:
        try:
            connection.close()
        except Exception:
            logger.warning("Closing the mail connection failed", exc_info=True)


def send_one(connection, data: dict) -> bool:
    """Send one message on an open connection; a failure is logged by kind.
    (The caller counts the outcomes in /metrics, once per batch: ``counted``.)"""
    try:
        connection.send_messages([_message(data)])
    except Exception:
        logger.exception("mail: sending a %s e-mail failed", data.get("kind", "notice"))
        return False
    return True


def counted(sent: int, failed: int) -> None:
    """Add a batch's outcomes to the mail counters of /metrics."""
    for outcome, number in (("sent", sent), ("failed", failed)):
        if number:
            metrics.counter_add("mail_total", number, outcome=outcome)


def deliver(payloads: Iterable[dict], *, tried: Callable[[int, bool], None] | None = None) -> list[int]:
    """Send each message over one connection; returns the positions of those
    that failed (logged, so that the caller can retry or release a claim).
    ``tried`` is told each position and whether it left, as soon as it is known.

    One message failing does not stop the others: a bad address must not
    cost the rest of the desk their reminders.
    """
    payloads = list(payloads)
    if not payloads:
        return []
    try:
        with mail_connection() as connection:
            failed = []
            for position, data in enumerate(payloads):
                stop_point()  # a stopping worker stops here, between two messages
                ok = send_one(connection, data)
                if not ok:
                    failed.append(position)
                if tried is not None:
                    tried(position, ok)
            counted(len(payloads) - len(failed), len(failed))
            return failed
    except MailUnavailable:
        logger.exception("mail: the mail server could not be reached; %d e-mail(s) not sent", len(payloads))
        return list(range(len(payloads)))


def _progress(context: TaskContext) -> tuple[str, dict]:
    """What an earlier run of this task (a worker that died or stopped)
    already did: the task runs again with the same id. ``next`` is the first
    message not yet tried, ``failed`` the positions tried and not sent."""
    key = f"mail:{context.task_result.id}"
    mark = JobMark.objects.filter(name=key).first()
    return key, {"next": 0, "failed": [], **(mark.value if mark else {})}


def password_reset_payload(*, user: User, domain: str, site_name: str, use_https: bool, subject_template: str, body_template: str) -> dict:
    """The reset e-mail, with its link made now (in the worker)."""
    context = {
        "email": user.email,
        "domain": domain,
        "site_name": site_name,
        "uid": urlsafe_base64_encode(force_bytes(user.pk)),
        "user": user,
        "token": default_token_generator.make_token(user),
        "protocol": "https" if use_https else "http",
    }
    subject = "".join(render_to_string(subject_template, context).splitlines())
    return payload(to=[user.email], subject=subject, body=render_to_string(body_template, context), kind="password reset")


@task(takes_context=True)
def mail_send(context: TaskContext, payloads: list[dict], attempt: int = 0) -> dict:
    """Send a batch of messages over one connection; failed ones are tried
    again later (1, 2, 4 minutes...) where the backend can defer, then logged.

    Twice is safe: each message tried moves this task's progress mark (kept
    a week, then pruned), so a run of the same task after its worker died
    starts after the last message tried, and retries the ones that failed
    before. Only a kill between the server's acceptance and that write can
    send the one message in flight again, with the same Message-ID."""
    key, progress = _progress(context)
    start = progress["next"]

    def tried(position: int, ok: bool) -> None:
        progress["next"] = start + position + 1
        if not ok:
            progress["failed"].append(start + position)
        mark_set(key, progress)

    todo = [{"message_id": message_id(context.task_result.id, start + i), **with_link(data)} for i, data in enumerate(payloads[start:])]
    unsent = deliver(todo, tried=tried)  # tried is not told when the server cannot be reached
    failed = [payloads[i] for i in sorted(set(progress["failed"]) | {start + i for i in unsent})]
    if failed and not progress.get("retried"):
        mail_retry(failed, attempt)
        mark_set(key, {**progress, "next": len(payloads), "retried": True})
    return {"sent": len(payloads) - len(failed), "failed": len(failed)}


def mail_retry(failed: list[dict], attempt: int) -> bool:
    """Enqueue failed messages again, or give up (logged) after the last try."""
    if attempt < settings.GATECHECK_MAIL_RETRIES and mail_send.get_backend().supports_defer:
        delay = timedelta(minutes=2**attempt)
        mail_send.using(run_after=timezone.now() + delay).enqueue(failed, attempt + 1)
        logger.warning("mail: %d e-mail(s) not sent; trying again in %s", len(failed), delay)
        return True
    logger.error("mail: %d e-mail(s) not sent after %d attempt(s): %s", len(failed), attempt + 1, sorted({m.get("kind", "notice") for m in failed}))
    return False


@task
def password_reset_send(user_id: int, domain: str, site_name: str, use_https: bool, subject_template: str, body_template: str) -> bool:
    """The password-reset e-mail, its link made here rather than stored in the task.

    Twice is safe: a second run sends a second working link to the same
    verified address, which the person asked for (nothing else changes)."""
    # Checked here, in the worker: the address may have changed since the form was sent.
    user = confirmed_recipients(User.objects.filter(pk=user_id, is_active=True)).first()
    if user is None:
        return False
    message = password_reset_payload(
        user=user, domain=domain, site_name=site_name, use_https=use_https, subject_template=subject_template, body_template=body_template
    )
    # Not retried: a reset link is asked for again by the person waiting for it.
    return not deliver([message])


# kind -> builder of the e-mail from its row; the links are signin's, which
# fills this in when it is imported (it imports this module).
LINKED_MESSAGES: dict[str, Callable[[int, str, dict], dict | None]] = {}


@task(takes_context=True)
def linked_send(context: TaskContext, kind: str, ref: int, base: str, extra: dict, attempt: int = 0) -> bool:
    """An e-mail carrying a signed link (``kind``: "not_me" or "verify"), built
    here from the row ``ref`` names, so that the task table holds no working
    link; tried again later as this same task, never as a stored message.

    Twice is safe: the progress mark of this task says the message left, and
    a second run sends nothing."""
    key, progress = _progress(context)
    if progress["next"] and not progress["failed"]:
        return True
    build = LINKED_MESSAGES[kind]
    message = build(ref, base, extra)
    if message is None:
        return False  # used, changed or confirmed meanwhile: nothing to send
    message["message_id"] = message_id(context.task_result.id)
    if not deliver([message], tried=lambda _, ok: ok and mark_set(key, {"next": 1, "failed": []})):
        return True
    if attempt < settings.GATECHECK_MAIL_RETRIES and linked_send.get_backend().supports_defer:
        linked_send.using(run_after=timezone.now() + timedelta(minutes=2**attempt)).enqueue(kind, ref, base, extra, attempt + 1)
    else:
        logger.error("mail: a %s e-mail was not sent after %d attempt(s)", message["kind"], attempt + 1)
    return False


def linked_enqueue(kind: str, ref: int, *, request=None, base: str = "", extra: dict | None = None) -> bool:
    """Queue a linked e-mail, its links on the site of ``request`` (or ``base``);
    like ``enqueue``, a queue that cannot be reached is logged."""
    try:
        linked_send.enqueue(kind, ref, request.build_absolute_uri("/") if request is not None else base or site_base() + "/", extra or {})
    except Exception:
        logger.exception("mail: queueing a %s e-mail failed", kind)
        return False
    return True
