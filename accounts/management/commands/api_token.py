"""API tokens from the command line (INVENTORY.md): create (printed once), list, revoke."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts import tokens
from accounts.management.base import GatecheckCommand
from accounts.models import ApiToken, User


class Command(GatecheckCommand):
    help = "Create, list or revoke API tokens for /api/v1/. A new token is printed once; only its digest is kept."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Make a token and print it once.")
        create.add_argument("--user", required=True, help="Whose token it is (USERNAME).")
        create.add_argument("--scope", required=True, choices=list(tokens.SCOPES))
        create.add_argument("--days", type=int, default=tokens.DEFAULT_DAYS, help=f"Days it lives (1 to {tokens.MAX_DAYS}, default {tokens.DEFAULT_DAYS}).")
        create.add_argument("--name", default="", help="What uses it (default: 'command line').")
        listing = actions.add_parser("list", help="A user's tokens, without their secrets.")
        listing.add_argument("--user", required=True)
        revoke = actions.add_parser("revoke", help="Revoke a token by its id (from list).")
        revoke.add_argument("id", type=int)

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=User.normalize_username(username)).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        return user

    def _create(self, *, user: str, scope: str, days: int, name: str, **_):
        try:
            token, secret = tokens.create(user=self._user(user), name=name or "command line", scope=scope, days=days, via="manage.py")
        except tokens.TokenRefused as refused:
            raise CommandError(f"No token made: {refused}") from None
        self.stderr.write(f"Token {token.pk} for {token.user.username} ({scope}, until {token.expires_at:%Y-%m-%d}); shown only now:")
        self.stdout.write(secret)

    def _list(self, *, user: str, **_):
        rows = ApiToken.objects.filter(user=self._user(user)).order_by("pk")
        for t in rows:
            state = f"revoked {t.revoked_at:%Y-%m-%d} ({t.revoked_reason})" if t.revoked_at else ("live" if t.live else "expired")
            used = f"last used {t.last_used_at:%Y-%m-%d %H:%M} UTC from {t.last_used_ip or '?'}" if t.last_used_at else "never used"
            self.stdout.write(f"{t.pk}\t{t.name}\t{t.scope}\texpires {t.expires_at:%Y-%m-%d}\t{state}\t{used}")
        if not rows:
            self.stdout.write("No API tokens.")

    def _revoke(self, *, id: int, **_):
        token = ApiToken.objects.select_related("user").filter(pk=id).first()
        if token is None:
            raise CommandError(f"No API token {id}.")
        if not tokens.revoke(token=token, reason="revoked by manage.py"):
            raise CommandError(f"API token {id} was revoked already.")
        self.stdout.write(f"Revoked API token {id} ({token.name}) of {token.user.username}.")
