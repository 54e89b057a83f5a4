"""Alert channels through apprise (SECURITY.md 35): one library for Slack,
Microsoft Teams, Telegram, Discord, ntfy, Pushover, PagerDuty, Opsgenie,
JSON webhooks and e-mail.

A channel URL holds a credential. It is sealed with Fernet (AES-128-CBC and
HMAC-SHA256) under ``GATECHECK_CHANNEL_KEYS`` (the first key seals, every
key opens; without the setting, a key derived from SECRET_KEY for this use
alone), shown only in apprise's own privacy form, never exported nor logged.
Rotation: put a new key first in ``GATECHECK_CHANNEL_KEYS``, keep the old
one after it (``SECRET_KEY`` names the default), run ``manage.py
alert_channel rekey``, then drop the old key.

Delivery is a task (``channel_send``) with a connect and read timeout and
retries after 1, 2 and 4 minutes; a channel that fails ``FAILING_AFTER``
times in a row is shown as failing and its person is e-mailed once.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from datetime import timedelta

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest
from django.tasks import task
from django.utils import timezone
from django.utils.crypto import salted_hmac

from readiness.secrets import find_secret

from . import mail
from .audit import record_event
from .mail import notify
from .models import AlertChannel, User

logger = logging.getLogger("gatecheck.channels")

EVENTS: dict[str, str] = {
    "bot_down": "A bot went down",
    "bot_failing": "A bot reported a failure",
    "bot_recovered": "A bot recovered",
    "level_dropped": "My readiness fell a level",
    "security": "Security notices (a new factor, a token, a password change)",
}
DEFAULT_EVENTS = ("bot_down", "bot_failing", "bot_recovered")
MAX_CHANNELS = 10
RETRIES = 3
FAILING_AFTER = 3
CONNECT_TIMEOUT, READ_TIMEOUT = 4.0, 8.0
NAME_MAX = AlertChannel._meta.get_field("name").max_length


class ChannelRefused(ValueError):
    def __init__(self, message: str, field: str = "url"):
        super().__init__(message)
        self.field = field


# --- Sealing ------------------------------------------------------------------------------


DERIVED = "SECRET_KEY"


def _derived() -> list[bytes]:
    secrets = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return [base64.urlsafe_b64encode(salted_hmac("accounts.channels", "fernet", secret=s, algorithm="sha256").digest()) for s in secrets]


def _fernet() -> MultiFernet:
    """The configured keys in order; the word SECRET_KEY in the list stands
    for the key derived from it (the default), so moving off the default is
    a rotation like any other: GATECHECK_CHANNEL_KEYS=<new key>,SECRET_KEY, rekey, then <new key> alone."""
    keys: list[bytes] = []
    for key in settings.GATECHECK_CHANNEL_KEYS or [DERIVED]:
        keys += _derived() if key == DERIVED else [key.encode()]
    return MultiFernet([Fernet(key) for key in keys])


def seal(url: str) -> str:
    return _fernet().encrypt(url.encode()).decode()


def opened(channel: AlertChannel) -> str | None:
    """The channel's URL, or None when no configured key opens it (a key was dropped too early)."""
    try:
        return _fernet().decrypt(channel.url_sealed.encode()).decode()
    except InvalidToken:
        logger.error("channels: channel %s cannot be opened with the configured keys", channel.pk)
        return None


def rekey() -> int:
    """Seal every channel again under the first key (after a key rotation)."""
    fernet, done = _fernet(), 0
    for channel in AlertChannel.objects.only("pk", "url_sealed").iterator():
        AlertChannel.objects.filter(pk=channel.pk).update(url_sealed=fernet.rotate(channel.url_sealed.encode()).decode())
        done += 1
    return done


# --- Managing ------------------------------------------------------------------------------


def _plugin(url: str):
    import apprise

    plugin = apprise.Apprise.instantiate(url.strip(), suppress_exceptions=True)
    if plugin is None:
        raise ChannelRefused("Apprise does not know this URL. Write it as its documentation shows, e.g. slack://..., tgram://..., json://host/path.")
    plugin.socket_connect_timeout, plugin.socket_read_timeout = CONNECT_TIMEOUT, READ_TIMEOUT
    return plugin


def _masked_part(part: str) -> str:
    return f"{part[0]}…{part[-1]}" if len(part) > 4 else "…"


def masked(url: str) -> str:
    """How a channel URL is shown: the service and a host name kept, every
    other part cut to its first and last character (a webhook path, a
    topic, a token, a user), the options left out. Apprise's own privacy
    form leaves a webhook's path and an ntfy topic whole."""
    scheme, _, rest = url.strip().partition("://")
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    authority, _, path = rest.partition("/")
    host = authority.rsplit("@", 1)[-1]
    name, _, port = host.partition(":")
    # A host name or address is kept; anything else in its place (a token, a topic, a chat id) is not.
    is_host = name == "localhost" or ("." in name and all(label for label in name.split(".")))
    if port and not port.isdigit():
        is_host, port = False, ""
    shown_host = (name if is_host else _masked_part(host)) + (f":{port}" if port else "")
    user = "…@" if "@" in authority else ""
    parts = [_masked_part(p) for p in path.split("/") if p]
    return f"{scheme}://{user}{shown_host}" + ("/" + "/".join(parts) if parts else "")


def add(*, user: User, url: str, name: str = "", events: Iterable[str] = DEFAULT_EVENTS, request: HttpRequest | None = None) -> AlertChannel:
    events = list(dict.fromkeys(events))
    if unknown := [e for e in events if e not in EVENTS]:
        raise ChannelRefused(f"Unknown event(s): {', '.join(unknown)}; choose from {', '.join(EVENTS)}.", "events")
    if not events:
        raise ChannelRefused("Choose at least one event.", "events")
    _plugin(url)  # refused here if apprise does not know it
    shown = masked(url)
    name = (name.strip() or shown.split("://", 1)[0])[:NAME_MAX]
    if find_secret(name):
        raise ChannelRefused("The name looks like a secret; describe the channel instead.", "name")
    if AlertChannel.objects.filter(user=user).count() >= MAX_CHANNELS:
        raise ChannelRefused(f"A person keeps at most {MAX_CHANNELS} channels; remove one first.", "url")
    with transaction.atomic():
        channel = AlertChannel.objects.create(user=user, name=name, url_sealed=seal(url.strip()), url_shown=shown, events=events)
        # The audit row names the kind of service, never the URL.
        record_event(action="alert_channel.added", request=request, subject=user, object_label=name,
                     details={"service": shown.split("://", 1)[0], "events": events})
    return channel


def events_set(*, channel: AlertChannel, events: Iterable[str], request: HttpRequest | None = None) -> None:
    events = [e for e in dict.fromkeys(events) if e in EVENTS]
    if not events:
        raise ChannelRefused("Choose at least one event.", "events")
    with transaction.atomic():
        AlertChannel.objects.filter(pk=channel.pk).update(events=events)
        record_event(action="alert_channel.changed", request=request, subject=channel.user, object_label=channel.name, details={"events": events})


def remove(*, channel: AlertChannel, request: HttpRequest | None = None) -> None:
    with transaction.atomic():
        channel.delete()
        record_event(action="alert_channel.removed", request=request, subject=channel.user, object_label=channel.name)


# --- Sending ------------------------------------------------------------------------------


def deliver(channel: AlertChannel, title: str, body: str) -> str | None:
    """Send now; None when apprise says it went, else why not (no URL in it)."""
    url = opened(channel)
    if url is None:
        return "its URL cannot be opened with the configured keys"
    try:
        plugin = _plugin(url)
        ok = plugin.notify(body=body, title=title)
    except Exception as error:  # a plugin's own failure must not end the worker
        return f"{type(error).__name__} while sending"
    return None if ok else "the service refused or did not answer in time"


def _failed(channel: AlertChannel, why: str) -> None:
    AlertChannel.objects.filter(pk=channel.pk).update(failures=F("failures") + 1, last_error=why[:200])
    channel.refresh_from_db(fields=["failures"])
    logger.warning("channels: channel %s (%s) failed: %s", channel.pk, channel.url_shown.split("://", 1)[0], why)
    if channel.failures == FAILING_AFTER:
        notify(channel.user, f"Your alert channel '{channel.name}' keeps failing",
               f"Gatecheck could not deliver to your alert channel '{channel.name}' {FAILING_AFTER} times in a row "
               f"(last: {why}). Check it on your alerts page and press 'Send a test'.")


@task
def channel_send(channel_id: int, title: str, body: str, attempt: int = 0, link: tuple[str, int] | None = None) -> bool:
    """Deliver one alert to one channel; on failure try again after 1, 2 and
    4 minutes. ``link`` names a link made here, for the channel's person
    (the task table never holds a working link). Twice is safe enough: a
    worker killed mid-send can repeat one alert, never lose it (an alert is
    a nudge, not a record)."""
    channel = AlertChannel.objects.select_related("user").filter(pk=channel_id, user__is_active=True).first()
    if channel is None:
        return False
    text = mail.with_link({"body": body, "link": [link[0], link[1], channel.user_id] if link else None})["body"]
    why = deliver(channel, title, text)
    if why is None:
        AlertChannel.objects.filter(pk=channel.pk).update(failures=0, last_error="", last_sent_at=timezone.now())
        return True
    _failed(channel, why)
    if attempt < RETRIES and channel_send.get_backend().supports_defer:
        channel_send.using(run_after=timezone.now() + timedelta(minutes=2**attempt)).enqueue(channel_id, title, body, attempt + 1, link)
    return False


def send_event(user_ids: Iterable[int], event: str, title: str, body: str) -> int:
    """Queue ``title``/``body`` to every channel of these people that takes
    ``event``, once the current transaction commits; returns how many."""
    return send_each([(uid, title, body, None) for uid in user_ids], event)


# One message: to whom, its title and body, and the link it carries (kind, ref) or None.
Message = tuple[int, str, str, "tuple[str, int] | None"]


def send_each(messages: list[Message], event: str) -> int:
    """Each message to its person's channels that take ``event``: one query
    for any number of people, a task per channel and message after the commit."""
    if not messages:
        return 0
    # A person keeps at most MAX_CHANNELS: their events are read here, not matched in SQL (SQLite has no JSON containment).
    rows = AlertChannel.objects.filter(user_id__in={m[0] for m in messages}, user__is_active=True).values_list("pk", "user_id", "events")
    taking: dict[int, list[int]] = {}
    for pk, uid, events in rows:
        if event in events:
            taking.setdefault(uid, []).append(pk)
    sent = 0
    for uid, title, body, link in messages:
        for channel_id in taking.get(uid, ()):
            transaction.on_commit(lambda c=channel_id, t=title, b=body, k=link: channel_send.enqueue(c, f"[Gatecheck] {t}", b, 0, k))
            sent += 1
    return sent


def security_notice(user: User, subject: str, body: str) -> bool:
    """Tell a person about a security change: by e-mail (accounts.mail.notify)
    and on each of their channels that takes security notices."""
    send_event([user.pk], "security", subject, body)
    return notify(user, subject, body)
