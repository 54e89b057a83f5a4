"""Per-desk tallies of the current scores, kept in step with them.

A desk page's tiles (traders, average, levels, overdue, bots down) and its
per-rule totals are counts over the desk's ``CurrentScore`` rows. Counted on
each request they read every row: 50,000 for a superuser. Instead each scope
(one desk, ``d<id>``, or ``all``: the members of any desk, each once) keeps
its counts as ``ScoreTally`` rows:

- the first read of a scope on a day, or an hour after the last build,
  builds them from the current rows (the desk app's one aggregate query);
- the one write path of current scores (``services._current_sync``) adds
  each trader's change to every scope they belong to, in one statement in
  the same transaction;
- a change of membership (a trader added to or removed from a desk, a desk
  or a user deleted) forgets the scopes it touches, rebuilt on next read.

"Overdue" depends on the day, so the counts name the day they were taken
against and a new day starts afresh. Two writes of one trader are serialised
by the lock on their current row; a write racing a build can leave a scope
off by that one trader until its next build, at most an hour later (and
while off, an unfiltered page by score can show one row twice or skip one
where its unscored and scored traders meet).

A trader who joins a desk is scored at once, so a desk has unscored members
only when their membership or score was written around the app.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models.signals import m2m_changed, post_delete
from django.utils import timezone

from accounts.models import Desk, User
from readiness import rules
from readiness import vocabulary as words

from .models import RULE_COLUMNS, ScoreTally

logger = logging.getLogger(__name__)

ALL = "all"
MAX_AGE = timedelta(hours=1)
# The columns of a current row a tally counts, in this order.
COLUMNS = ("score", "level", "next_due_on", *RULE_COLUMNS.values())
NAMES = (
    "total",
    "scored",
    "score_sum",
    "overdue",
    "bots_down",
    *(f"level_{level}" for level in words.LEVEL_LABELS),
    *(f"{kind}_{rid}" for rid in RULE_COLUMNS for kind in ("fail", "partial")),
)
_ALIVE = RULE_COLUMNS["automation.alive"]


def desk_scope(desk_id: int) -> str:
    return f"d{desk_id}"


def contribution(values: tuple | None, as_of: date) -> dict[str, int]:
    """What one current row (``COLUMNS`` values, or None: unscored) adds to
    a tally, "total" aside (that counts members, scored or not)."""
    if values is None:
        return {}
    score, level, next_due_on, *statuses = values
    by_column = dict(zip(RULE_COLUMNS.values(), statuses, strict=True))
    out = {"scored": 1, "score_sum": score, f"level_{level}": 1}
    if next_due_on is not None and next_due_on < as_of:
        out["overdue"] = 1
    if by_column[_ALIVE] == rules.FAIL:
        out["bots_down"] = 1
    for rid, column in RULE_COLUMNS.items():
        if by_column[column] == rules.FAIL:
            out[f"fail_{rid}"] = 1
        elif by_column[column] == rules.PARTIAL:
            out[f"partial_{rid}"] = 1
    return out


def read(scope: str, as_of: date, build: Callable[[], dict[str, int]]) -> dict[str, int]:
    """The scope's counts: kept ones if taken today less than an hour ago,
    else ``build()``'s, stored for the next read."""
    now = timezone.now()
    kept = {name: (n, day, built) for name, n, day, built in ScoreTally.objects.filter(scope=scope).values_list("name", "n", "as_of", "built_at")}
    if all(name in kept and kept[name][1] == as_of and now - kept[name][2] < MAX_AGE for name in NAMES):
        return {name: kept[name][0] for name in NAMES}
    counts = build()
    try:
        with transaction.atomic():
            ScoreTally.objects.bulk_create(
                [ScoreTally(scope=scope, name=name, n=counts[name], as_of=as_of, built_at=now) for name in NAMES],
                update_conflicts=True,
                unique_fields=["scope", "name"],
                update_fields=["n", "as_of", "built_at"],
            )
    except DatabaseError:
        # A refused write (a read-only or full database): the page still shows the fresh counts.
        logger.warning("desk tallies: storing the counts of %s failed; counted afresh next time", scope, exc_info=True)
    return {name: counts[name] for name in NAMES}


def apply(before: dict[int, tuple | None], after: dict[int, tuple], desks: dict[int, set[int]]) -> None:
    """Add each trader's change (their current row ``before`` and ``after``
    a write) to the tallies of every scope they belong to (their ``desks``,
    and ``all``): one statement, whatever the number of traders and desks.
    Call inside the write's transaction."""
    today = timezone.localdate()
    changes: dict[int, dict[str, int]] = {}
    for uid, values in after.items():
        old, new = contribution(before.get(uid), today), contribution(values, today)
        diff = {name: new.get(name, 0) - old.get(name, 0) for name in old.keys() | new.keys()}
        if diff := {name: n for name, n in diff.items() if n}:
            changes[uid] = diff
    if not changes:
        return
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for uid, diff in changes.items():
        on = desks.get(uid) or ()
        for scope in [*(desk_scope(pk) for pk in on), *([ALL] if on else [])]:
            for name, n in diff.items():
                totals[scope, name] += n
    if not (totals := {key: n for key, n in totals.items() if n}):
        return
    table = ScoreTally._meta.db_table
    cases = " ".join("WHEN scope = %s AND name = %s THEN %s" for _ in totals)
    touched = sorted({scope for scope, _ in totals})
    params = [value for (scope, name), n in totals.items() for value in (scope, name, n)]
    # Our own table and columns; every value is a parameter.
    sql = (
        f"UPDATE {table} SET n = n + CASE {cases} ELSE 0 END "  # noqa: S608
        f"WHERE as_of = %s AND scope IN ({', '.join(['%s'] * len(touched))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, today, *touched])


def forget(scopes: Iterable[str] | None = None) -> None:
    """Drop these scopes' counts (every scope's when None): rebuilt on next read."""
    rows = ScoreTally.objects.all() if scopes is None else ScoreTally.objects.filter(scope__in=list(scopes))
    rows.delete()


def _members_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if pk_set is None:
        # A clear: which desks lost members is not at hand.
        forget()
        return
    # From the user's side (user.desks.add(...)) the keys are desks'.
    desks = pk_set if reverse else {instance.pk}
    forget([*(desk_scope(pk) for pk in desks), ALL])


def _desk_deleted(sender, instance, **kwargs) -> None:
    forget([desk_scope(instance.pk), ALL])


def _user_deleted(sender, instance, **kwargs) -> None:
    forget()


def connect() -> None:
    m2m_changed.connect(_members_changed, sender=Desk.members.through, dispatch_uid="tally_members_changed")
    post_delete.connect(_desk_deleted, sender=Desk, dispatch_uid="tally_desk_deleted")
    post_delete.connect(_user_deleted, sender=User, dispatch_uid="tally_user_deleted")
