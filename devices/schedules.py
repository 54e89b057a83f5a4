"""Heartbeat schedules (CHECKLIST.md "Heartbeats v2"): when a bot is expected
to check in, and so its status at any moment and the next moment that status
can change without a ping.

Three kinds: ``simple`` (every ``period``, the v1 meaning), ``cron`` (a
five-field expression in an IANA zone, read with croniter) and ``market``
(an exchange's sessions from exchange-calendars, with margins; holidays and
early closes included). Outside a market window a heartbeat is ``idle``,
which counts as alive. Every time is compared in UTC.

Not in the Django-free core: it reads croniter and exchange-calendars.
It imports nothing of Django either.

``next_change`` is what the sweep and the ping store as the heartbeat's
deadline: the sweep then reads only heartbeats whose deadline has passed,
however many there are, instead of evaluating every bot every minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

KINDS = ("simple", "cron", "market")
MARGIN_MINUTES = (0, 240)
# How far ahead a market schedule looks for its next window (a long holiday included).
HORIZON_DAYS = 21


@dataclass(frozen=True)
class Schedule:
    kind: str = "simple"
    cron: str = ""
    tz: str = "UTC"
    exchange: str = ""
    before_open: int = 0
    after_close: int = 0

    def as_dict(self) -> dict[str, object]:
        """The ``schedule`` object of the /2 file (INVENTORY.md)."""
        if self.kind == "cron":
            return {"kind": "cron", "cron": self.cron, "tz": self.tz}
        if self.kind == "market":
            return {"kind": "market", "exchange": self.exchange, "before_open": self.before_open, "after_close": self.after_close}
        return {"kind": "simple"}

    def describe(self) -> str:
        if self.kind == "cron":
            return f"cron {self.cron} ({self.tz})"
        if self.kind == "market":
            return f"{self.exchange} sessions, {self.before_open} min before the open to {self.after_close} min after the close"
        return "every period"


# --- Checking ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def exchanges() -> tuple[str, ...]:
    """Every MIC (ISO 10383) exchange-calendars knows, sorted; XNAS, its alias of XNYS, included."""
    import exchange_calendars

    canonical = set(exchange_calendars.get_calendar_names(include_aliases=False))
    aliases = set(exchange_calendars.get_calendar_names(include_aliases=True)) - canonical
    # MICs are four capitals; of the aliases only MICs such as XNAS (NYSE, LSE or CME are not MICs).
    mic = {name for name in canonical if len(name) == 4 and name.isalpha() and name.isupper()}
    return tuple(sorted(mic | {name for name in aliases if len(name) == 4 and name.isalpha() and name.startswith("X")}))


def problems(schedule: Schedule) -> dict[str, str]:
    """What is wrong with a schedule, by field (the form's field names and the file's keys alike)."""
    found: dict[str, str] = {}
    if schedule.kind not in KINDS:
        return {"kind": f"must be one of {', '.join(KINDS)}"}
    if schedule.kind == "cron":
        from croniter import croniter

        cron = schedule.cron if isinstance(schedule.cron, str) else ""
        if not 0 < len(cron) <= CRON_MAX or len(cron.split()) != 5 or not croniter.is_valid(cron):
            found["cron"] = "is not a five-field cron expression (minute hour day month weekday)"
        elif not _fires(cron):
            found["cron"] = "never comes round (such as 30 February)"
        if not is_zone(schedule.tz):
            found["tz"] = "is not an IANA time zone such as America/New_York"
    if schedule.kind == "market":
        if not isinstance(schedule.exchange, str) or schedule.exchange not in exchanges():
            found["exchange"] = "is not an exchange code (MIC) known to exchange-calendars, such as XNYS"
        for name in ("before_open", "after_close"):
            value = getattr(schedule, name)
            if not (isinstance(value, int) and MARGIN_MINUTES[0] <= value <= MARGIN_MINUTES[1]):
                found[name] = f"must be {MARGIN_MINUTES[0]} to {MARGIN_MINUTES[1]} minutes"
    return found


CRON_MAX = 100


def _fires(cron: str) -> bool:
    from croniter import CroniterError

    try:
        cron_after(Schedule(kind="cron", cron=cron), datetime.now(UTC))
    except (CroniterError, ValueError):
        return False
    return True


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def is_zone(name: object) -> bool:
    """An IANA time zone name (the one check, for schedules and the profile)."""
    return isinstance(name, str) and name in _zones()


# --- Expected times ------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def cron_after(schedule: Schedule, moment: datetime) -> datetime:
    """The first cron time strictly after ``moment``, in UTC (the expression read in its zone, DST included)."""
    from croniter import croniter

    try:
        zone = ZoneInfo(schedule.tz)
    except ZoneInfoNotFoundError:
        zone = ZoneInfo("UTC")
    return _utc(croniter(schedule.cron, _utc(moment).astimezone(zone)).get_next(datetime))


@lru_cache(maxsize=64)
def _calendar(mic: str):
    import exchange_calendars

    return exchange_calendars.get_calendar(mic)


def windows(schedule: Schedule, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The market windows (session open - before_open to close + after_close, UTC) that end after ``start`` and begin before ``end``."""
    calendar = _calendar(schedule.exchange)
    first = max(calendar.first_session, _naive_day(start - timedelta(days=2)))
    last = min(calendar.last_session, _naive_day(end + timedelta(days=1)))
    if first > last:
        return
    for session in calendar.sessions_in_range(first, last):
        opens = calendar.session_open(session).to_pydatetime() - timedelta(minutes=schedule.before_open)
        closes = calendar.session_close(session).to_pydatetime() + timedelta(minutes=schedule.after_close)
        if closes > start and opens < end:
            yield opens, closes


def _naive_day(moment: datetime):
    import pandas

    return pandas.Timestamp(_utc(moment).date())


def _window_at(schedule: Schedule, moment: datetime) -> tuple[datetime, datetime] | None:
    return next((w for w in windows(schedule, moment, moment + timedelta(seconds=1)) if w[0] <= moment < w[1]), None)


def next_checkins(schedule: Schedule, period_minutes: int, now: datetime, count: int = 5) -> list[datetime]:
    """When the next ``count`` check-ins are expected, if the bot checks in now (UTC)."""
    now = _utc(now)
    period = timedelta(minutes=period_minutes)
    if schedule.kind == "cron":
        times, moment = [], now
        for _ in range(count):
            moment = cron_after(schedule, moment)
            times.append(moment)
        return times
    if schedule.kind == "market":
        times = []
        for opens, closes in windows(schedule, now, now + timedelta(days=HORIZON_DAYS)):
            moment = max(now, opens) + period
            while moment <= closes and len(times) < count:
                times.append(moment)
                moment += period
            if len(times) >= count:
                break
        return times
    return [now + period * k for k in range(1, count + 1)]


# --- Status and the next change ------------------------------------------------------------


def status(schedule: Schedule, *, last_kind: str | None, last_success: datetime | None, period_minutes: int, grace_minutes: int,
           created_at: datetime, now: datetime) -> str:
    """``new``, ``up``, ``late``, ``down``, ``failing`` or ``idle`` at ``now``.

    ``last_kind`` is the last status signal (a success or a failure);
    ``last_success`` the time of the last success, if any."""
    now = _utc(now)
    period, grace = timedelta(minutes=period_minutes), timedelta(minutes=grace_minutes)
    if schedule.kind == "market":
        window = _window_at(schedule, now)
        if last_kind == "failure":
            return "failing"
        if window is None:
            return "idle"
        since = max(_utc(last_success), window[0]) if last_success else window[0]
        return _by_delay(now - since, period, grace)
    if last_kind == "failure":
        return "failing"
    if schedule.kind == "cron":
        if last_success is None:
            return "new" if now <= cron_after(schedule, created_at) + grace else "down"
        due = cron_after(schedule, last_success)
        return "up" if now < due else ("late" if now <= due + grace else "down")
    if last_success is None:
        return "new"
    return _by_delay(now - _utc(last_success), period, grace)


def _by_delay(since: timedelta, period: timedelta, grace: timedelta) -> str:
    if since <= period:
        return "up"
    return "late" if since <= period + grace else "down"


def next_change(schedule: Schedule, *, last_kind: str | None, last_success: datetime | None, period_minutes: int, grace_minutes: int,
                created_at: datetime, now: datetime, told: str = "") -> datetime | None:
    """The next moment the sweep must look at the bot: when, with no ping,
    its status turns ``down``; ``now`` when it is down already and nobody was
    told (``told`` is the last status told); for a market bot told down, the
    window's close (it turns ``idle``); None when nothing changes without a
    ping (told down, failing, or a simple bot that never checked in)."""
    now = _utc(now)
    period, grace = timedelta(minutes=period_minutes), timedelta(minutes=grace_minutes)
    if last_kind == "failure":
        return None
    if schedule.kind == "market":
        for opens, closes in windows(schedule, now, now + timedelta(days=HORIZON_DAYS)):
            since = max(_utc(last_success), opens) if last_success else opens
            down_at = since + period + grace
            if down_at >= closes:
                continue  # this window closes before the bot could be down
            if down_at > now:
                return down_at
            return closes if told == "down" else now
        return None
    if schedule.kind == "cron":
        base = last_success if last_success is not None else created_at
        down_at = cron_after(schedule, base) + grace
    elif last_success is None:
        return None
    else:
        down_at = _utc(last_success) + period + grace
    if down_at > now:
        return down_at
    return None if told == "down" else now
