"""Who a desk lead oversees: the one place desk scoping is decided.

Everything a lead may see is reached through ``desks_for`` and
``traders_for``; views, exports, reminders and the admin never filter by desk
on their own. These live in accounts, with ``Desk``, so that the admin site
(accounts) and the desk app share them without an upward import.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Desk, User


def desks_for(user: User) -> QuerySet[Desk]:
    """Desks a user oversees: the ones they lead, or every desk for a superuser."""
    if user.is_superuser:
        return Desk.objects.all()
    return Desk.objects.filter(leads=user)


def traders_for(user: User, desks: Iterable[Desk] | QuerySet[Desk] | None = None) -> QuerySet[User]:
    """Members of the desks ``user`` oversees (optionally narrowed to ``desks``).

    A subquery rather than a join, so a trader on two desks appears once.
    """
    overseen = desks_for(user)
    if desks is not None:
        overseen = overseen.filter(pk__in=[d.pk for d in desks])
    member_ids = Desk.members.through.objects.filter(desk__in=overseen).values("user_id")
    return User.objects.filter(pk__in=member_ids)


def overseen_users(user: User) -> QuerySet[User]:
    """Whose detail page, reminder and MFA reset ``user`` may reach: their
    desks' traders, or anyone for a superuser."""
    if user.is_superuser:
        return User.objects.all()
    return traders_for(user)
