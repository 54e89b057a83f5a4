"""The coming-due dates as an iCalendar feed (RFC 5545), via ``icalendar``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

from icalendar import Alarm, Calendar, Event

from readiness.rules import DueItem


def _uid(owner_id: int, item: DueItem) -> str:
    # Stable across refreshes, so a calendar moves an event when its date
    # changes (a rotated key) instead of adding a second one. The label is
    # hashed so that names do not leak into calendar metadata.
    digest = hashlib.sha256(f"{item.kind}\0{item.label}".encode()).hexdigest()[:16]
    return f"{owner_id}-{item.kind}-{digest}@gatecheck"


def feed_ical(items: Iterable[DueItem], *, owner_id: int, link: Callable[[str], str]) -> bytes:
    """All-day events, one per due item; ``link`` turns a URL name into an absolute URL."""
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
    return calendar.to_ical()
