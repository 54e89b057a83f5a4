"""What a desk shows as counts, defined once, and per-desk tallies of them.

A desk page's tiles (traders, average, levels, overdue, bots down) and its
per-rule totals are counts over the desk's ``CurrentScore`` rows, defined
once, as the one SQL aggregate of :func:`count`. Counted on each request
they read every row: 50,000 for a superuser. Instead each scope (one desk,
``d<id>``, or ``all``: the members of any desk, each once) keeps its counts
as ``ScoreTally`` rows:

- the first read of a scope on a day, or an hour after the last build,
  builds them with :func:`count`;
- the one write path of current scores (``services._current_sync``) counts
  its traders with :func:`count_each` (the same aggregate, per trader)
  before and after the write, and adds the difference to every scope they
  belong to, in one statement in the same transaction;
- a change of membership (a trader added to or removed from a desk, a desk
  or a user deleted) forgets the scopes it touches, rebuilt on next read.

"Overdue" depends on the day, so the counts name the day they were taken
against and a new day starts afresh. Two writes of one trader already scored
are serialised by the lock on their current row (two first scores at once
have no row to lock and can both be counted); a write racing a build can
leave a scope off by that trader until its next build, at most an hour later.

A trader who joins a desk is scored at once, so a desk has unscored members
only when their membership or score was written around the app.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date, timedelta

from django.db import DatabaseError, connection, transaction
from django.db.models import QuerySet
from django.db.models.signals import m2m_changed, post_delete
from django.utils import timezone

from accounts.models import Desk, User
from readiness import rules
from readiness import vocabulary as words

from .models import RULE_COLUMNS, ScoreTally

logger = logging.getLogger(__name__)

ALL = "all"
MAX_AGE = timedelta(hours=1)
TILES = ("total", "scored", "score_sum", "overdue", "bots_down", *(f"level_{level}" for level in words.LEVEL_LABELS))
BY_RULE = tuple(f"{kind}_{rid}" for rid in RULE_COLUMNS for kind in ("fail", "partial"))
NAMES = (*TILES, *BY_RULE)


def desk_scope(desk_id: int) -> str:
    return f"d{desk_id}"


def _count_sql(traders: QuerySet[User], as_of: date, *, tiles: bool, by_rule: bool, each: bool) -> tuple[str, list, list[str]]:
    """The one definition of every count a desk shows, as SQL around the
    queryset's own SQL (Django's ``aggregate()`` spent most of a page's time
    compiling thirty conditional counts; the set of traders is still the
    queryset's). ``each``: one row of counts per trader, id first."""
    rule_columns = list(RULE_COLUMNS.items())
    inner, params = traders.values_list(
        "pk", "current_score__user", "current_score__score", "current_score__level", "current_score__next_due_on",
        *(f"current_score__{col}" for _, col in rule_columns),
    ).query.sql_with_params()
    names, parts, outer = ["total"], ["COUNT(*)"], []

    def count(name: str, condition: str, *values) -> None:
        names.append(name)
        parts.append(f"COALESCE(SUM(CASE WHEN {condition} THEN 1 ELSE 0 END), 0)")
        outer.extend(values)

    if tiles:
        names += ["scored", "score_sum"]
        parts += ["COUNT(scored)", "COALESCE(SUM(score), 0)"]
        count("overdue", "next_due_on < %s", as_of)
        count("bots_down", f"{RULE_COLUMNS['automation.alive']} = %s", rules.FAIL)
        for level in words.LEVEL_LABELS:
            count(f"level_{level}", "level = %s", level)
    if by_rule:
        for rid, col in rule_columns:
            count(f"fail_{rid}", f"{col} = %s", rules.FAIL)
            count(f"partial_{rid}", f"{col} = %s", rules.PARTIAL)
    columns = ", ".join(["id", "scored", "score", "level", "next_due_on", *(col for _, col in rule_columns)])
    select, group = ("id, ", " GROUP BY id") if each else ("", "")
    sql = f"WITH t({columns}) AS ({inner}) SELECT {select}{', '.join(parts)} FROM t{group}"  # noqa: S608 - our own columns; values are parameters
    return sql, [*params, *outer], names


def count(traders: QuerySet[User], as_of: date, *, tiles: bool = True, by_rule: bool = True) -> dict[str, int]:
    """Counts over ``traders`` in one aggregate query: the desk's tiles
    and/or, per rule, how many fail it and how many are partial (stored status)."""
    sql, params, names = _count_sql(traders, as_of, tiles=tiles, by_rule=by_rule, each=False)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return dict(zip(names, cursor.fetchone(), strict=True))


def count_each(user_ids: Iterable[int], as_of: date) -> dict[int, dict[str, int]]:
    """What each trader adds to every count (the same aggregate, per trader): one query."""
    sql, params, names = _count_sql(User.objects.filter(pk__in=list(user_ids)), as_of, tiles=True, by_rule=True, each=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {uid: dict(zip(names, values, strict=True)) for uid, *values in cursor.fetchall()}


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


def apply(before: dict[int, dict[str, int]], after: dict[int, dict[str, int]], desks: dict[int, set[int]]) -> None:
    """Add each trader's change (their :func:`count_each` ``before`` and
    ``after`` a write) to the tallies of every scope they belong to (their
    ``desks``, and ``all``): one statement, whatever the number of traders
    and desks. Call inside the write's transaction."""
    today = timezone.localdate()
    changes: dict[int, dict[str, int]] = {}
    for uid, new in after.items():
        old = before.get(uid, {})
        if diff := {name: new[name] - old.get(name, 0) for name in NAMES if name != "total" and new[name] != old.get(name, 0)}:
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
