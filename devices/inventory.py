"""The inventory file ``gatecheck.inventory/2`` (shared/INVENTORY.md; ``/1`` files still import).

Export turns a trader's stored inventory into the document; import reads a
document, checks all of it (every problem is reported, each with its JSON
path, and no value is ever quoted back since it could be a secret), and
only then replaces the stored inventory in one transaction.

The format is handled section by section: each :class:`Section` knows how
to export, check, count, delete and create its own part, so a new part of
the inventory is one new class in :data:`SECTIONS`.

Export is canonical (fixed key order, lists sorted by their natural key,
timestamps in UTC with ``Z``), so export -> import -> export is identical.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.audit import record_event
from readiness import rules
from readiness import vocabulary as words
from readiness.brokers import BROKER_CODES, DEFAULT_BROKER, BrokerCatalog, catalog_for
from readiness.masking import mask_label
from readiness.secrets import fingerprint_problem
from readiness.validators import (
    ACCEPTED_RISK_MAX_DAYS,
    HEARTBEAT_GRACE_MINUTES,
    HEARTBEAT_PERIOD_MINUTES,
    duplicate_message,
    future_problem,
    secret_problem,
    text_problem,
)

from . import schedules
from .models import AcceptedRisk, ApiKey, Automation, Drill, Heartbeat, Permission, RecoveryMethod, Region, Subscription, TradingProfile, TrustedDevice
from .signals import inventory_changed

FORMAT = "gatecheck.inventory/2"
# /1 files still import: what they lack gets the /2 defaults.
FORMATS = ("gatecheck.inventory/1", FORMAT)
# Limits a hostile or broken file meets before it costs anything (README,
# "Limits"): a trader's real inventory is a few KB with a few dozen rows.
MAX_IMPORT_BYTES = 512 * 1024
MAX_ITEMS_PER_SECTION = 500
MAX_DEPTH = 8
MAX_PROBLEMS_SHOWN = 100
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$")


# --------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One reason a document is refused, at a JSON path like ``api_keys[0].fingerprint``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or 'document'}: {self.message}"


class InventoryInvalid(Exception):
    """The document was refused; ``problems`` lists the first
    MAX_PROBLEMS_SHOWN reasons and ``more`` counts the others."""

    def __init__(self, problems: list[Problem], more: int = 0):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems
        self.more = more

    @property
    def total(self) -> int:
        return len(self.problems) + self.more

    def lines(self) -> list[str]:
        """The problems as text lines, with how many more there are."""
        lines = [str(p) for p in self.problems]
        if self.more:
            lines.append(f"... and {self.more} more problem{'s' if self.more != 1 else ''}")
        return lines


_FIELD_NAME = re.compile(r"[a-z_]{1,40}")


def _key_name(key: str) -> str:
    # An unknown key is named in a path only when it looks like a field name:
    # never echo content (a secret, a control character, a lone surrogate).
    return key if _FIELD_NAME.fullmatch(key) else "(a key)"


def _join_path(base: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{base}[{key}]"
    return f"{base}.{key}" if base else key


@dataclass
class Context:
    """What checking needs beyond one value: the day and time, and facts shared between sections."""

    today: date
    now: datetime
    # The profile's broker: it decides which access points and second factors exist.
    catalog: BrokerCatalog = field(default_factory=lambda: catalog_for(None))
    problems: list[Problem] = field(default_factory=list)
    more: int = 0
    key_labels: set[str] = field(default_factory=set)

    def add(self, path: str, message: str) -> None:
        # Every problem is counted, only the first ones are kept: a refused
        # file of 250,000 bad rows must not become a 13 MB page.
        if len(self.problems) < MAX_PROBLEMS_SHOWN:
            self.problems.append(Problem(path, message))
        else:
            self.more += 1


class Obj:
    """Reads one JSON object field by field, recording problems at their paths.

    Every reader returns a usable default when the value is wrong, so checking
    carries on and reports every problem in one pass.
    """

    def __init__(self, value: Any, path: str, ctx: Context, *, required: Iterable[str], optional: Iterable[str] = ()):
        self.path = path
        self.ctx = ctx
        self.ok = isinstance(value, dict)
        self.value = value if self.ok else {}
        if not self.ok:
            ctx.add(path, "must be an object")
            return
        required, optional = tuple(required), tuple(optional)
        for key in required:
            if key not in self.value:
                ctx.add(_join_path(path, key), "is required")
        for key in self.value:
            if key not in required and key not in optional:
                ctx.add(_join_path(path, _key_name(key)), "is not a known field")

    def at(self, key: str) -> str:
        return _join_path(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.value

    def string(self, key: str, *, max_length: int, allow_empty: bool = False, free_text: bool = True) -> str:
        value = self.value.get(key, "")
        if key not in self.value:
            return ""
        if not isinstance(value, str):
            self.ctx.add(self.at(key), "must be a string")
            return ""
        # The rules of every form's text field (readiness.validators), in the same order.
        if free_text and (problem := secret_problem(value)):
            self.ctx.add(self.at(key), problem)
        elif problem := text_problem(value):
            self.ctx.add(self.at(key), problem)
        elif not value.strip() and not allow_empty:
            self.ctx.add(self.at(key), "must not be empty")
        elif len(value) > max_length:
            self.ctx.add(self.at(key), f"is longer than {max_length} characters")
        return value

    def boolean(self, key: str, default: bool = False) -> bool:
        if key not in self.value:
            return default
        value = self.value[key]
        if not isinstance(value, bool):
            self.ctx.add(self.at(key), "must be true or false")
            return default
        return value

    def choice(self, key: str, allowed: Iterable[str], *, nullable: bool = False) -> str | None:
        allowed = tuple(allowed)
        if key not in self.value:
            return None
        value = self.value[key]
        if value is None and nullable:
            return None
        if not isinstance(value, str) or value not in allowed:
            expected = ", ".join(allowed) + (", or null" if nullable else "")
            self.ctx.add(self.at(key), f"unknown value; expected one of {expected}")
            return None
        return value

    def choices(self, key: str, allowed: Iterable[str]) -> list[str]:
        allowed = tuple(allowed)
        if key not in self.value:
            return []
        value = self.value[key]
        if not isinstance(value, list):
            self.ctx.add(self.at(key), "must be a list")
            return []
        seen: list[str] = []
        for index, item in enumerate(value):
            path = _join_path(self.at(key), index)
            if not isinstance(item, str) or item not in allowed:
                self.ctx.add(path, f"unknown value; expected one of {', '.join(allowed)}")
            elif item in seen:
                self.ctx.add(path, "is listed twice")
            else:
                seen.append(item)
        return seen

    def day(self, key: str, *, nullable: bool = False, past: bool = False) -> date | None:
        """A date; with ``past``, one that has happened (the forms' rule for the same field)."""
        if key not in self.value:
            return None
        value = self.value[key]
        if value is None and nullable:
            return None
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                day = date.fromisoformat(value)
            except ValueError:
                pass
            else:
                if past and (problem := future_problem(day, self.ctx.today)):
                    self.ctx.add(self.at(key), problem)
                    return None
                return day
        self.ctx.add(self.at(key), "must be a date YYYY-MM-DD" + (" or null" if nullable else ""))
        return None

    def moment(self, key: str, *, nullable: bool = False) -> datetime | None:
        """A timestamp with a zone that has happened (drill times come from the server clock)."""
        if key not in self.value:
            return None
        value = self.value[key]
        if value is None and nullable:
            return None
        if isinstance(value, str) and _TIMESTAMP.fullmatch(value):
            try:
                moment = datetime.fromisoformat(value).astimezone(UTC)
            except (ValueError, OverflowError):
                # OverflowError: a zone offset that moves 0001-01-01 or 9999-12-31 off the calendar.
                pass
            else:
                if problem := future_problem(moment, self.ctx.now):
                    self.ctx.add(self.at(key), problem)
                    return None
                return moment
        self.ctx.add(self.at(key), "must be an ISO 8601 timestamp with a zone, e.g. 2026-11-01T09:00:00Z" + (", or null" if nullable else ""))
        return None


def _items(document: dict, key: str, ctx: Context) -> list[tuple[str, Any]]:
    """The elements of a top-level list, each with its path."""
    value = document.get(key)
    if key not in document:
        return []
    if not isinstance(value, list):
        ctx.add(key, "must be a list")
        return []
    if len(value) > MAX_ITEMS_PER_SECTION:
        # Refused before any row is read: checking 170,000 rows costs seconds.
        ctx.add(key, f"has {len(value)} items; at most {MAX_ITEMS_PER_SECTION} are allowed")
        return []
    return [(_join_path(key, index), item) for index, item in enumerate(value)]


def _unique(rows: list[tuple[str, Any]], field_name: str, ctx: Context, noun: str, called: str = "") -> None:
    """Names and labels are unique within their list, with the forms' message
    (readiness.validators.duplicate_message). Only strings are compared: a
    value of the wrong type was refused already, and a list is not hashable."""
    seen: set[str] = set()
    for path, row in rows:
        value = row.get(field_name) if isinstance(row, dict) else None
        if not isinstance(value, str) or not value:
            continue
        if value in seen:
            ctx.add(_join_path(path, field_name), duplicate_message(noun, called or field_name))
        else:
            seen.add(value)


def _day(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _moment(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _max_length(model, name: str) -> int:
    return model._meta.get_field(name).max_length


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


class Section:
    """One top-level part of the document."""

    key: str = ""
    # New in /2: a /1 file may lack it (it then gets the default, empty).
    since_v2: bool = False

    def export(self, user) -> Any:
        raise NotImplementedError

    def check(self, document: dict, ctx: Context) -> Any:
        """Check the section and return its rows, ready to create."""
        raise NotImplementedError

    def count_current(self, user) -> int:
        raise NotImplementedError

    def count(self, cleaned: Any) -> int:
        return len(cleaned)

    def delete(self, user) -> None:
        raise NotImplementedError

    def kept(self, user) -> Any:
        """What of the stored rows outlives a replace (read before the delete)."""
        return None

    def create(self, user, cleaned: Any, created: dict[str, Any]) -> None:
        raise NotImplementedError


class ListSection(Section):
    """A list of rows of one owned model."""

    model: Any = None

    def queryset(self, user):
        return self.model.objects.for_owner(user)

    def sort_key(self, row) -> tuple:
        """Natural order of the list; the inventory models define it themselves."""
        return row.sort_key()

    def row(self, instance) -> dict[str, Any]:
        raise NotImplementedError

    def export(self, user) -> list[dict[str, Any]]:
        # Sorted in Python, with the id last, so the order does not depend on
        # the database's collation and ties keep their creation order.
        rows = sorted(self.queryset(user), key=lambda r: (*self.sort_key(r), r.pk))
        return [self.row(r) for r in rows]

    def count_current(self, user) -> int:
        return self.queryset(user).count()

    def delete(self, user) -> None:
        self.queryset(user).delete()

    def create(self, user, cleaned: list[dict[str, Any]], created: dict[str, Any]) -> None:
        objects = self.model.objects.bulk_create([self.model(owner=user, **row) for row in cleaned])
        created[self.key] = objects


class ProfileSection(Section):
    key = "profile"
    TASK_FIELDS = {task: f"plan_{task}" for task in words.TASKS}

    def export(self, user) -> dict[str, Any]:
        profile = TradingProfile.objects.for_owner(user).first() or TradingProfile(owner=user)
        return {
            "broker": profile.broker,
            "broker_mfa": profile.broker_mfa,
            "regions_traded": list(profile.regions_traded),
            "products_traded": list(profile.products_traded or ()),
            "support_contact": profile.support_contact,
            "interface_plan": {task: getattr(profile, name) for task, name in self.TASK_FIELDS.items()},
        }

    def check(self, document: dict, ctx: Context) -> dict[str, Any]:
        if self.key not in document:
            return {}
        obj = Obj(
            document.get("profile"), "profile", ctx, required=("broker", "broker_mfa", "regions_traded"),
            optional=("interface_plan", "products_traded", "support_contact"),
        )
        broker = obj.choice("broker", BROKER_CODES) or DEFAULT_BROKER
        ctx.catalog = catalog_for(broker)
        mfa = obj.choice("broker_mfa", TradingProfile.BrokerMfa.values, nullable=True)
        if mfa is not None and not ctx.catalog.offers_mfa(mfa):
            ctx.add(obj.at("broker_mfa"), f"{ctx.catalog.name} does not offer this second factor")
        cleaned: dict[str, Any] = {
            "broker": broker,
            "broker_mfa": mfa,
            "regions_traded": obj.choices("regions_traded", Region.values),
            "products_traded": obj.choices("products_traded", words.PRODUCTS),
            "support_contact": obj.string("support_contact", max_length=_max_length(TradingProfile, "support_contact"), allow_empty=True),
        }
        plan = Obj(obj.value.get("interface_plan", {}), obj.at("interface_plan"), ctx, required=(), optional=words.TASKS)
        for task, name in self.TASK_FIELDS.items():
            cleaned[name] = plan.choice(task, ctx.catalog.access_points, nullable=True)
        return cleaned

    def count_current(self, user) -> int:
        return 1

    def count(self, cleaned) -> int:
        return 1

    def delete(self, user) -> None:
        # The profile is updated in place: fields outside the format (the
        # support contact on the recovery card) are kept.
        return None

    def create(self, user, cleaned: dict[str, Any], created: dict[str, Any]) -> None:
        TradingProfile.objects.update_or_create(owner=user, defaults=cleaned)


class DeviceSection(ListSection):
    key = "devices"
    model = TrustedDevice

    def row(self, d: TrustedDevice) -> dict[str, Any]:
        return {
            "name": d.name,
            "kind": d.kind,
            "platforms": list(d.platforms),
            "validated_on": _day(d.validated_on),
            "status": d.status,
            "browser_saved_password": d.browser_saved_password,
            "notes": d.notes,
        }

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        for path, item in items:
            obj = Obj(item, path, ctx, required=("name", "kind", "platforms", "validated_on", "status", "browser_saved_password"), optional=("notes",))
            cleaned.append({
                "name": obj.string("name", max_length=_max_length(TrustedDevice, "name")),
                "kind": obj.choice("kind", TrustedDevice.Kind.values),
                # Only the access points the profile's broker offers.
                "platforms": obj.choices("platforms", ctx.catalog.access_points),
                "validated_on": obj.day("validated_on", nullable=True, past=True),
                "status": obj.choice("status", TrustedDevice.Status.values),
                "browser_saved_password": obj.boolean("browser_saved_password"),
                "notes": obj.string("notes", max_length=_max_length(TrustedDevice, "notes"), allow_empty=True),
            })
        _unique(items, "name", ctx, str(TrustedDevice._meta.verbose_name))
        return cleaned


class RecoverySection(ListSection):
    key = "recovery_methods"
    model = RecoveryMethod

    def row(self, m: RecoveryMethod) -> dict[str, Any]:
        return {"kind": m.kind, "label": m.label, "last_verified_on": _day(m.last_verified_on)}

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        for path, item in items:
            obj = Obj(item, path, ctx, required=("kind", "label", "last_verified_on"))
            cleaned.append({
                "kind": obj.choice("kind", RecoveryMethod.Kind.values),
                "label": obj.string("label", max_length=_max_length(RecoveryMethod, "label")),
                "last_verified_on": obj.day("last_verified_on", nullable=True, past=True),
            })
        _unique(items, "label", ctx, str(RecoveryMethod._meta.verbose_name))
        return cleaned


class ApiKeySection(ListSection):
    key = "api_keys"
    model = ApiKey

    def row(self, k: ApiKey) -> dict[str, Any]:
        return {
            "label": k.label,
            "scopes": list(k.scopes),
            "service_account": k.service_account,
            "created_on": _day(k.created_on),
            "last_rotated_on": _day(k.last_rotated_on),
            "expires_on": _day(k.expires_on),
            "status": k.status,
            "fingerprint": k.fingerprint,
            "ip_restricted": k.ip_restricted,
        }

    def kept(self, user) -> dict[tuple[str, date | None], tuple[datetime, int | None]]:
        """Rotations a pipeline recorded, by label and date: a file that
        restates the date for the same label keeps the evidence recorded;
        another date is declared (``devices.services.rotation_declared``)."""
        rows = self.queryset(user).filter(rotation_recorded_at__isnull=False)
        return {(k.label, k.last_rotated_on): (k.rotation_recorded_at, k.rotation_token_id) for k in rows}

    def create(self, user, cleaned: list[dict[str, Any]], created: dict[str, Any]) -> None:
        recorded = created.get(f"kept.{self.key}") or {}
        rows = []
        for row in cleaned:
            at, token = recorded.get((row["label"], row["last_rotated_on"]), (None, None))
            rows.append(self.model(owner=user, **row, rotation_recorded_at=at, rotation_token_id=token))
        created[self.key] = self.model.objects.bulk_create(rows)

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        required = ("label", "scopes", "service_account", "created_on", "last_rotated_on", "expires_on", "status", "fingerprint")
        for path, item in items:
            obj = Obj(item, path, ctx, required=required, optional=("ip_restricted",))
            fingerprint = obj.value.get("fingerprint", "")
            if obj.has("fingerprint"):
                if not isinstance(fingerprint, str):
                    ctx.add(obj.at("fingerprint"), "must be a string")
                    fingerprint = ""
                elif problem := fingerprint_problem(fingerprint) or text_problem(fingerprint):
                    ctx.add(obj.at("fingerprint"), problem)
                    fingerprint = ""
            row = {
                "label": obj.string("label", max_length=_max_length(ApiKey, "label")),
                "scopes": obj.choices("scopes", ApiKey.Scope.values),
                "service_account": obj.boolean("service_account"),
                "created_on": obj.day("created_on", past=True),
                "last_rotated_on": obj.day("last_rotated_on", nullable=True, past=True),
                "expires_on": obj.day("expires_on", nullable=True),
                "status": obj.choice("status", ApiKey.Status.values),
                "fingerprint": fingerprint,
                "ip_restricted": obj.boolean("ip_restricted"),
            }
            if isinstance(row["label"], str) and row["label"]:
                ctx.key_labels.add(row["label"])
            cleaned.append(row)
        _unique(items, "label", ctx, str(ApiKey._meta.verbose_name))
        return cleaned


class AutomationSection(ListSection):
    key = "automations"
    model = Automation

    def queryset(self, user):
        return super().queryset(user).select_related("api_key", "heartbeat")

    def row(self, a: Automation) -> dict[str, Any]:
        beat = getattr(a, "heartbeat", None)
        return {
            "name": a.name,
            "api_key": a.api_key.label if a.api_key_id else None,
            "token_refresh": a.token_refresh,
            "fallback_contact": a.fallback_contact,
            "on_auth_failure": a.on_auth_failure,
            "status": a.status,
            # The schedule only: ping tokens, ping keys and observed signals never leave through the file.
            "heartbeat": self._beat(beat) if beat else None,
        }

    @staticmethod
    def _beat(beat: Heartbeat) -> dict[str, Any]:
        # The default simple schedule is left out, so a file written before schedules reads back the same.
        row: dict[str, Any] = {"period_minutes": beat.period_minutes, "grace_minutes": beat.grace_minutes}
        return row | ({"schedule": beat.schedule.as_dict()} if beat.schedule_kind != "simple" else {})

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        for path, item in items:
            obj = Obj(item, path, ctx, required=("name", "api_key", "token_refresh", "fallback_contact", "on_auth_failure", "status"), optional=("heartbeat",))
            key_label = obj.value.get("api_key")
            if obj.has("api_key") and key_label is not None:
                if not isinstance(key_label, str):
                    ctx.add(obj.at("api_key"), "must be a key label or null")
                    key_label = None
                elif key_label not in ctx.key_labels:
                    ctx.add(obj.at("api_key"), "names no key in api_keys (use a key's label, or null for the human login)")
                    key_label = None
            cleaned.append({
                "name": obj.string("name", max_length=_max_length(Automation, "name")),
                "api_key": key_label,
                "token_refresh": obj.boolean("token_refresh"),
                "fallback_contact": obj.string("fallback_contact", max_length=_max_length(Automation, "fallback_contact"), allow_empty=True),
                "on_auth_failure": obj.choice("on_auth_failure", Automation.OnAuthFailure.values),
                "status": obj.choice("status", Automation.Status.values),
                "heartbeat": self._heartbeat(obj, ctx),
            })
        _unique(items, "name", ctx, str(Automation._meta.verbose_name))
        return cleaned

    @staticmethod
    def _heartbeat(obj: Obj, ctx: Context) -> dict[str, int] | None:
        value = obj.value.get("heartbeat") if isinstance(obj.value, dict) else None
        if value is None:
            return None
        beat = Obj(value, obj.at("heartbeat"), ctx, required=("period_minutes", "grace_minutes"), optional=("schedule",))
        checked: dict[str, Any] = {}
        for key, (low, high) in (("period_minutes", HEARTBEAT_PERIOD_MINUTES), ("grace_minutes", HEARTBEAT_GRACE_MINUTES)):
            number = beat.value.get(key) if isinstance(beat.value, dict) else None
            if not isinstance(number, int) or isinstance(number, bool) or not low <= number <= high:
                ctx.add(beat.at(key), f"must be a whole number of minutes from {low} to {high}")
            checked[key] = number
        return checked | AutomationSection._schedule(beat, ctx)

    # What each schedule kind holds, and its defaults (INVENTORY.md).
    SCHEDULE_KEYS = {"simple": {}, "cron": {"cron": None, "tz": "UTC"}, "market": {"exchange": None, "before_open": 0, "after_close": 0}}

    @staticmethod
    def _schedule(beat: Obj, ctx: Context) -> dict[str, Any]:
        """The model's schedule fields from ``heartbeat.schedule`` (default simple); each problem at its JSON path."""
        value = beat.value.get("schedule", {"kind": "simple"}) if isinstance(beat.value, dict) else {"kind": "simple"}
        at = beat.at("schedule")
        if not isinstance(value, dict):
            ctx.add(at, "must be an object with a kind")
            return {}
        kind = value.get("kind")
        if not isinstance(kind, str) or kind not in AutomationSection.SCHEDULE_KEYS:
            ctx.add(f"{at}.kind", f"must be one of {', '.join(AutomationSection.SCHEDULE_KEYS)}")
            return {}
        fields = AutomationSection.SCHEDULE_KEYS[kind]
        for key in value:
            if key != "kind" and key not in fields:
                ctx.add(f"{at}.{_key_name(key)}", f"is not a field of a {kind} schedule")
        given = {key: value.get(key, default) for key, default in fields.items()}
        for key, default in fields.items():
            if default is None and not isinstance(given[key], str):
                ctx.add(f"{at}.{key}", "is required (a string)")
                given[key] = ""
            elif isinstance(default, int) and (not isinstance(given[key], int) or isinstance(given[key], bool)):
                ctx.add(f"{at}.{key}", "must be a whole number of minutes")
                given[key] = default
        schedule = schedules.Schedule(kind=kind, **given)
        for key, message in schedules.problems(schedule).items():
            ctx.add(f"{at}.{key}", message)
        return {"schedule_kind": kind, "cron": schedule.cron, "tz": schedule.tz, "exchange": schedule.exchange,
                "before_open": schedule.before_open, "after_close": schedule.after_close}

    def create(self, user, cleaned: list[dict[str, Any]], created: dict[str, Any]) -> None:
        keys = {key.label: key for key in created.get("api_keys", [])}
        rows = [{k: v for k, v in row.items() if k != "heartbeat"} | {"api_key": keys[row["api_key"]] if row["api_key"] else None} for row in cleaned]
        super().create(user, rows, created)
        now = timezone.now()
        pairs = zip(created[self.key], cleaned, strict=True)
        beats = [Heartbeat(owner=user, automation=bot, created_at=now, **row["heartbeat"]) for bot, row in pairs if row["heartbeat"]]
        for beat in beats:
            beat.deadline = now  # the next sweep looks, and stores when each can next change
        Heartbeat.objects.bulk_create(beats)


class SubscriptionSection(ListSection):
    key = "subscriptions"
    model = Subscription
    REGION_ORDER = {region: index for index, region in enumerate(Region.values)}

    def sort_key(self, row) -> tuple:
        return (self.REGION_ORDER.get(row.region, 99), row.feed.casefold(), row.feed)

    def row(self, s: Subscription) -> dict[str, Any]:
        return {"region": s.region, "feed": s.feed, "active": s.active}

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        for path, item in items:
            obj = Obj(item, path, ctx, required=("region", "feed", "active"))
            cleaned.append({
                "region": obj.choice("region", Region.values),
                "feed": obj.string("feed", max_length=_max_length(Subscription, "feed")),
                "active": obj.boolean("active"),
            })
        _unique(items, "feed", ctx, "feed", called="name")
        return cleaned


class DrillSection(ListSection):
    key = "drills"
    model = Drill

    def sort_key(self, row) -> tuple:
        return (row.started_at,)

    def row(self, d: Drill) -> dict[str, Any]:
        return {
            "started_at": _moment(d.started_at),
            "finished_at": _moment(d.finished_at),
            "lost_device": d.lost_device,
            "completed": d.completed,
        }

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        for path, item in items:
            obj = Obj(item, path, ctx, required=("started_at", "finished_at", "lost_device", "completed"))
            row = {
                "started_at": obj.moment("started_at"),
                "finished_at": obj.moment("finished_at", nullable=True),
                "lost_device": obj.string("lost_device", max_length=_max_length(Drill, "lost_device")),
                "completed": obj.boolean("completed"),
            }
            if row["completed"] and obj.has("finished_at") and obj.value.get("finished_at") is None:
                ctx.add(obj.at("finished_at"), "is required for a completed drill")
            elif not row["completed"] and row["finished_at"] is not None:
                ctx.add(obj.at("finished_at"), "must be null for a drill that was not completed")
            if row["started_at"] and row["finished_at"] and row["finished_at"] < row["started_at"]:
                ctx.add(obj.at("finished_at"), "is before started_at")
            cleaned.append(row)
        return cleaned

    def create(self, user, cleaned: list[dict[str, Any]], created: dict[str, Any]) -> None:
        # The file cannot say whether an unfinished drill is still running; an
        # imported one is taken as abandoned, so no stale timer keeps running.
        now = timezone.now()
        rows = [
            {**row, "abandoned_at": None if row["completed"] else max(now, row["started_at"])}
            for row in cleaned
        ]
        super().create(user, rows, created)


class AcceptedRiskSection(ListSection):
    key = "accepted_risks"
    model = AcceptedRisk
    RULE_IDS = tuple(rule.id for rule in rules.CATALOG)
    RULE_ORDER = {rule_id: index for index, rule_id in enumerate(RULE_IDS)}

    def sort_key(self, row) -> tuple:
        return (self.RULE_ORDER.get(row.rule, 99), row.rule)

    def row(self, r: AcceptedRisk) -> dict[str, Any]:
        return {"rule": r.rule, "reason": r.reason, "until": _day(r.until)}

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        items = _items(document, self.key, ctx)
        cleaned = []
        latest = ctx.today + timedelta(days=ACCEPTED_RISK_MAX_DAYS)
        for path, item in items:
            obj = Obj(item, path, ctx, required=("rule", "reason", "until"))
            row = {
                "rule": obj.choice("rule", self.RULE_IDS),
                "reason": obj.string("reason", max_length=_max_length(AcceptedRisk, "reason")),
                "until": obj.day("until"),
            }
            if row["until"] and row["until"] > latest:
                ctx.add(obj.at("until"), f"is more than {ACCEPTED_RISK_MAX_DAYS} days away (latest allowed today: {latest.isoformat()})")
            cleaned.append(row)
        _unique(items, "rule", ctx, "accepted risk")
        return cleaned


class PermissionSection(ListSection):
    key = "permissions"
    model = Permission
    since_v2 = True

    def row(self, p: Permission) -> dict[str, Any]:
        return {"product": p.product, "region": p.region, "status": p.status, "requested_on": _day(p.requested_on)}

    def check(self, document: dict, ctx: Context) -> list[dict[str, Any]]:
        if self.key not in document:
            return []
        items = _items(document, self.key, ctx)
        cleaned = []
        seen: set[tuple[str, str]] = set()
        for path, item in items:
            obj = Obj(item, path, ctx, required=("product", "region", "status"), optional=("requested_on",))
            row = {
                "product": obj.choice("product", words.PRODUCTS),
                "region": obj.choice("region", Region.values),
                "status": obj.choice("status", words.PERMISSION_STATUSES),
                "requested_on": obj.day("requested_on", nullable=True, past=True),
            }
            pair = (row["product"], row["region"])
            if None not in pair:
                if pair in seen:
                    ctx.add(_join_path(path, "region"), "this product and region are listed twice")
                seen.add(pair)
            cleaned.append(row)
        return cleaned


# Creation order: keys before the automations that name them. Deletion runs
# in reverse, so automations go before the keys they protect.
SECTIONS: tuple[Section, ...] = (
    ProfileSection(),
    DeviceSection(),
    RecoverySection(),
    ApiKeySection(),
    AutomationSection(),
    SubscriptionSection(),
    DrillSection(),
    AcceptedRiskSection(),
    PermissionSection(),
)
SECTION_TITLES = {
    "profile": "Trading profile",
    "devices": "Trusted devices",
    "recovery_methods": "Recovery methods",
    "api_keys": "API keys",
    "automations": "Automations",
    "subscriptions": "Market data subscriptions",
    "drills": "Device-loss drills",
    "accepted_risks": "Accepted risks",
    "permissions": "Trading permissions",
}

# What a person reads for each key of the document (the import preview says
# which fields change, in these words, never the file's values).
FIELD_LABELS = {
    "broker": "Broker", "broker_mfa": "Broker's second factor", "regions_traded": "Regions traded",
    "products_traded": "Products traded", "support_contact": "Support contact", "interface_plan": "Interface plan",
    "name": "Name", "kind": "Kind", "platforms": "Platforms", "validated_on": "Last validated", "status": "Status",
    "browser_saved_password": "Password saved in the browser", "notes": "Notes", "label": "Label",
    "last_verified_on": "Last verified", "scopes": "Scopes", "service_account": "Service account", "created_on": "Created",
    "last_rotated_on": "Last rotated", "expires_on": "Expires", "fingerprint": "Last 4 characters", "ip_restricted": "IP restricted",
    "api_key": "API key", "token_refresh": "Token refresh", "fallback_contact": "Fallback contact",
    "on_auth_failure": "When authentication fails", "heartbeat": "Heartbeat", "region": "Region", "feed": "Feed",
    "active": "Active", "lost_device": "Lost device", "started_at": "Started", "finished_at": "Finished",
    "completed": "Completed", "rule": "Rule", "reason": "Reason", "until": "Until", "product": "Product",
    "requested_on": "Requested",
}


def field_label(key: str) -> str:
    return FIELD_LABELS.get(key) or key.replace("_", " ").capitalize()


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------


def export_inventory(user) -> dict[str, Any]:
    """The user's whole inventory as a ``gatecheck.inventory/2`` document."""
    document: dict[str, Any] = {"format": FORMAT}  # always the newest format
    for section in SECTIONS:
        document[section.key] = section.export(user)
    return document


def dumps(document: dict[str, Any]) -> str:
    """The one text form of a document, for downloads and the command line."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            # Name the key only when it looks like a field name: never echo content.
            name = f"'{key}'" if re.fullmatch(r"[a-z_]{1,30}", key) else "a key"
            raise ValueError(f"{name} appears twice in one object")
        seen[key] = value
    return seen


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")


def _depth(text: str) -> int:
    """How deeply arrays and objects nest, strings left out. Measured before
    parsing: the JSON parser recurses once per level and fails with
    RecursionError a few thousand levels down."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


def parse(text: str | bytes) -> Any:
    """Decode and parse a document; raises InventoryInvalid when it is not JSON.

    Every way parsing can fail ends here as a refusal: too large, not UTF-8,
    nested too deeply, not JSON, a duplicate key, NaN or Infinity."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_IMPORT_BYTES:
        raise InventoryInvalid([Problem("", f"is larger than {MAX_IMPORT_BYTES // 1024} KB; an inventory is much smaller")])
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InventoryInvalid([Problem("", "is not UTF-8 text")])
    if _depth(text) > MAX_DEPTH:
        raise InventoryInvalid([Problem("", f"nests lists and objects more than {MAX_DEPTH} levels deep")])
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants)
    except json.JSONDecodeError as error:
        # The decoder's message names a position, never the content.
        raise InventoryInvalid([Problem("", f"is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}")])
    except ValueError as error:
        raise InventoryInvalid([Problem("", f"is not valid JSON: {error}")])
    except RecursionError:
        raise InventoryInvalid([Problem("", f"nests lists and objects more than {MAX_DEPTH} levels deep")])


@dataclass(frozen=True)
class Plan:
    """A checked document, ready to replace a trader's inventory."""

    cleaned: dict[str, Any]

    def counts(self) -> dict[str, int]:
        return {section.key: section.count(self.cleaned[section.key]) for section in SECTIONS}


def check(document: Any, *, today: date | None = None, now: datetime | None = None) -> Plan:
    """Check a parsed document completely; raises InventoryInvalid listing every problem."""
    ctx = Context(today=today or timezone.localdate(), now=now or timezone.now())
    if not isinstance(document, dict):
        raise InventoryInvalid([Problem("", "must be a JSON object")])
    version = document.get("format")
    if version not in FORMATS:
        ctx.add("format", "must be " + " or ".join(f'"{f}"' for f in FORMATS))
    # Sections new in /2 default to empty when a file lacks them.
    optional = {section.key for section in SECTIONS if section.since_v2}
    known = {"format", *(section.key for section in SECTIONS if version != FORMATS[0] or not section.since_v2)}
    for key in document:
        if key not in known:
            ctx.add(_key_name(key), "is not a known section")
    for section in SECTIONS:
        if section.key not in document and section.key not in optional:
            ctx.add(section.key, "is required (use an empty list when there is nothing to list)" if section.key != "profile" else "is required")
    cleaned = {section.key: section.check(document, ctx) for section in SECTIONS}
    if ctx.problems:
        raise InventoryInvalid(ctx.problems, ctx.more)
    return Plan(cleaned)


def load(text: str | bytes, *, today: date | None = None, now: datetime | None = None) -> Plan:
    """Parse and check a document's text."""
    return check(parse(text), today=today, now=now)


def current_counts(user) -> dict[str, int]:
    return {section.key: section.count_current(user) for section in SECTIONS}


def replace_inventory(*, user, plan: Plan, request: HttpRequest | None = None, source: str = "file") -> dict[str, int]:
    """Replace the user's whole inventory with a checked plan, in one transaction.

    Audited as ``inventory.imported`` with the counts per section.

    Imports for one user run one after the other: the user's row is locked
    first, so a parallel import waits, then replaces the whole inventory in
    turn (the result is always exactly one file, never a mix, and never a
    deadlock between the deletes of one and the inserts of another).
    """
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        created: dict[str, Any] = {f"kept.{section.key}": section.kept(user) for section in SECTIONS}
        for section in reversed(SECTIONS):
            section.delete(user)
        for section in SECTIONS:
            section.create(user, plan.cleaned[section.key], created)
        counts = plan.counts()
        record_event(
            action="inventory.imported",
            request=request,
            actor=request.user if request is not None else None,
            subject=user,
            object_label=f"{source}",
            details={"counts": counts},
        )
        # The one re-score of every inventory write (the checklist app listens).
        inventory_changed.send(sender=Plan, owner=user)
    return counts


# --------------------------------------------------------------------------
# The import preview: what changes, item by item, and the score it makes
# --------------------------------------------------------------------------

# The key that names an item within its list (labels and names are unique).
ITEM_KEYS: dict[str, Any] = {
    "devices": lambda row: row["name"],
    "recovery_methods": lambda row: row["label"],
    "api_keys": lambda row: row["label"],
    "automations": lambda row: row["name"],
    "subscriptions": lambda row: row["feed"],
    "drills": lambda row: f"{row['lost_device']} ({row['started_at'][:16].replace('T', ' ')})",
    "accepted_risks": lambda row: row["rule"],
    "permissions": lambda row: f"{row['product']}/{row['region']}",
}
# What a /1 file lacks, filled in as the import stores it.
V2_DEFAULTS = {"profile": {"products_traded": [], "support_contact": ""}, "devices": {"notes": ""}, "automations": {"heartbeat": None}}


@dataclass(frozen=True)
class SectionChanges:
    key: str
    title: str
    added: list[str]
    removed: list[str]
    changed: list[tuple[str, list[str]]]

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class Preview:
    sections: list[SectionChanges]
    score_before: int
    score_after: int
    level_after: str


def _normalised(document: dict[str, Any]) -> dict[str, Any]:
    """A checked document as the export would write it after the import."""
    doc = json.loads(json.dumps(document))
    doc.setdefault("permissions", [])
    doc["profile"] = {**V2_DEFAULTS["profile"], **doc.get("profile", {})}
    doc["devices"] = [{**V2_DEFAULTS["devices"], **row} for row in doc.get("devices", [])]
    doc["automations"] = [{**V2_DEFAULTS["automations"], **row} for row in doc.get("automations", [])]
    return doc


def _moment_value(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _day_value(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def inventory_from_document(document: dict[str, Any]) -> rules.Inventory:
    """The readiness snapshot a checked document would give, without storing it."""
    doc = _normalised(document)
    p = doc["profile"]
    plan = p.get("interface_plan") or {}
    return rules.Inventory(
        profile=rules.Profile(p.get("broker") or DEFAULT_BROKER, p.get("broker_mfa"), tuple(p.get("regions_traded", ())),
                              tuple((task, plan.get(task)) for task in words.TASKS), tuple(p.get("products_traded", ()))),
        devices=tuple(rules.Device(d["name"], d["kind"], frozenset(d["platforms"]), _day_value(d["validated_on"]), d["status"],
                                   d["browser_saved_password"]) for d in doc["devices"]),
        recovery_methods=tuple(rules.RecoveryMethod(m["kind"], mask_label(m["kind"], m["label"]), _day_value(m["last_verified_on"]))
                               for m in doc["recovery_methods"]),
        api_keys=tuple(rules.ApiKey(k["label"], frozenset(k["scopes"]), k["service_account"], _day_value(k["created_on"]),
                                    _day_value(k["last_rotated_on"]), _day_value(k["expires_on"]), k["status"], k.get("ip_restricted", False))
                       for k in doc["api_keys"]),
        # A heartbeat in a file has seen no ping yet: new.
        automations=tuple(rules.Automation(a["name"], a["api_key"], a["token_refresh"], a["fallback_contact"], a["on_auth_failure"], a["status"],
                                           heartbeat="new" if a.get("heartbeat") else None)
                          for a in doc["automations"]),
        subscriptions=tuple(rules.Subscription(s["region"], s["feed"], s["active"]) for s in doc["subscriptions"]),
        drills=tuple(rules.Drill(_moment_value(d["started_at"]), _moment_value(d["finished_at"]), d["lost_device"], d["completed"])
                     for d in doc["drills"]),
        accepted_risks=tuple(rules.AcceptedRisk(r["rule"], r["reason"], _day_value(r["until"])) for r in doc["accepted_risks"]),
        permissions=tuple(rules.Permission(x["product"], x["region"], x["status"], _day_value(x.get("requested_on")))
                          for x in doc["permissions"]),
    )


def preview(user, document: dict[str, Any], *, as_of: date, limits: rules.Limits, before: rules.Inventory) -> Preview:
    """Per section: items added, removed and changed (by field label), and the score before and after.

    Field names are shown, never values: a preview page is no place to echo
    what a file holds.
    """
    current, new = _normalised(export_inventory(user)), _normalised(document)
    sections = []
    for section in SECTIONS:
        key = section.key
        if key == "profile":
            changed = [field_label(field) for field in new[key] if new[key][field] != current[key].get(field)]
            sections.append(SectionChanges(key, SECTION_TITLES[key], [], [], [("", changed)] if changed else []))
            continue
        name = ITEM_KEYS[key]
        old_items = {name(row): row for row in current[key]}
        new_items = {name(row): row for row in new[key]}

        def shown(item: str, row: dict[str, Any], masked: bool = key == "recovery_methods") -> str:
            # Matched on the full label, shown masked like everywhere else.
            return mask_label(row["kind"], item) if masked else item

        changed_items = [
            (shown(item, row), [field_label(field) for field in row if row[field] != old_items[item].get(field)])
            for item, row in new_items.items()
            if item in old_items and row != old_items[item]
        ]
        sections.append(
            SectionChanges(
                key, SECTION_TITLES[key],
                added=[shown(item, row) for item, row in new_items.items() if item not in old_items],
                removed=[shown(item, row) for item, row in old_items.items() if item not in new_items],
                changed=changed_items,
            )
        )
    after = rules.evaluate(inventory_from_document(new), as_of, limits)
    return Preview(sections, rules.evaluate(before, as_of, limits).score, after.score, after.level)
