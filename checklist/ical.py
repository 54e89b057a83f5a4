"""The coming-due dates as an iCalendar feed (RFC 5545), via ``icalendar``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from icalendar import Alarm, Calendar, Event

from readiness.brokers import BrokerCatalog
from readiness.rules import DueItem


def _uid(owner_id: int, item: DueItem) -> str:
    # Stable across refreshes, so a calendar moves an event when its date
    # changes (a rotated key) instead of adding a second one. The label is
    # hashed so that names do not leak into calendar metadata.
    digest = hashlib.sha256(f"{item.kind}\0{item.label}".encode()).hexdigest()[:16]
    return f"{owner_id}-{item.kind}-{digest}@gatecheck"


def feed_ical(items: Iterable[DueItem], *, owner_id: int, link: Callable[[str], str], quiet: Iterable[Event] = ()) -> bytes:
    """All-day events, one per due item (``link`` turns a URL name into an
    absolute URL), and the broker's recurring quiet windows (``quiet_windows``)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Gatecheck//Login readiness due dates//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", "Gatecheck: readiness due dates")
    calendar.add("refresh-interval", timedelta(hours=12), parameters={"VALUE": "DURATION"})
    stamp = datetime.now(UTC).replace(microsecond=0)
    for item in items:
        url = link(item.fix_url)
        event = Event()
        event.add("uid", _uid(owner_id, item))
        event.add("dtstamp", stamp)
        event.add("dtstart", item.due_on)
        if item.due_on < date.max:
            # An all-day event without DTEND lasts one day (RFC 5545 3.6.1):
            # the last day of the calendar has no next day to end on.
            event.add("dtend", item.due_on + timedelta(days=1))
        event.add("summary", item.what)
        event.add("description", f"{item.what}. Update it in Gatecheck: {url}")
        event.add("url", url)
        event.add("transp", "TRANSPARENT")
        event.add("categories", ["Gatecheck"])
        # A reminder the morning before, so the date is not met by surprise.
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", item.what)
        alarm.add("trigger", timedelta(hours=-15))
        event.add_component(alarm)
        calendar.add_component(event)
    for event in quiet:
        event.add("dtstamp", stamp)
        calendar.add_component(event)
    # A TZID needs its VTIMEZONE (RFC 5545 3.2.19), or a calendar may guess the hour.
    calendar.add_missing_timezones()
    return calendar.to_ical()


# A first occurrence in the past, so that every recurrence from now on is in the feed.
SERIES_START = date(2026, 1, 4)  # a Sunday
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def quiet_windows(catalog: BrokerCatalog, *, owner_id: int, restart_at: time | None, restart_tz: str) -> list[Event]:
    """The broker's recurring moments when a login breaks (readiness.brokers):
    its weekly token reset, after which a fresh login is needed, and the
    daily restart of the platform at the time the trader chose. Times carry
    their zone (a TZID), so a calendar keeps them right across DST."""
    events = []
    if catalog.weekly_reset is not None:
        weekday, at, zone = catalog.weekly_reset
        hour, minute = (int(part) for part in at.split(":"))
        first = SERIES_START + timedelta(days=(WEEKDAYS.index(weekday) - SERIES_START.weekday()) % 7)
        events.append(_recurring(
            uid=f"{owner_id}-weekly-reset@gatecheck", start=datetime.combine(first, time(hour, minute), ZoneInfo(zone)),
            minutes=30, rule={"freq": "weekly", "byday": weekday},
            summary=f"{catalog.name}: weekly token reset, sign in again by hand",
            description=f"{catalog.name} invalidates login tokens every week at this time: the first login after it needs your "
            "second factor, even with auto-restart. Make sure someone can approve it before your bots need to trade.",
        ))
    if catalog.daily_restart and restart_at is not None:
        events.append(_recurring(
            uid=f"{owner_id}-daily-restart@gatecheck", start=datetime.combine(SERIES_START, restart_at, ZoneInfo(restart_tz)),
            minutes=5, rule={"freq": "daily"},
            summary=f"{catalog.daily_restart} daily restart",
            description=f"Your {catalog.daily_restart} restarts at this time each day: connected bots lose their session for a few minutes.",
        ))
    return events


def _recurring(*, uid: str, start: datetime, minutes: int, rule: dict, summary: str, description: str) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstart", start)
    event.add("dtend", start + timedelta(minutes=minutes))
    event.add("rrule", rule)
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "TRANSPARENT")
    event.add("categories", ["Gatecheck"])
    return event
