"""SCIM bearer tokens from the command line (INVENTORY.md): create (printed once), list, revoke."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts import scim_tokens
from accounts.management.base import GatecheckCommand
from accounts.models import ScimToken


class Command(GatecheckCommand):
    help = "Create, list or revoke the bearer tokens of /scim/v2/. A new token is printed once; only its digest is kept."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Make a token and print it once.")
        create.add_argument("name", help="What uses it (the identity provider's SCIM client).")
        create.add_argument("--days", type=int, default=scim_tokens.MAX_DAYS, help=f"Days it lives (1 to {scim_tokens.MAX_DAYS}).")
        actions.add_parser("list", help="Every token, without its secret.")
        revoke = actions.add_parser("revoke", help="Revoke a token by its name.")
        revoke.add_argument("name")

    def handle(self, *args, action: str, **options):
        getattr(self, f"_{action}")(**options)

    def _create(self, *, name: str, days: int, **_):
        try:
            token, secret = scim_tokens.create(name=name, days=days)
        except scim_tokens.Refused as refused:
            raise CommandError(f"No token made: {refused}") from None
        self.stderr.write(f"SCIM token '{token.name}' (until {token.expires_at:%Y-%m-%d}); shown only now:")
        self.stdout.write(secret)

    def _list(self, **_):
        rows = ScimToken.objects.all()
        for t in rows:
            state = f"revoked {t.revoked_at:%Y-%m-%d}" if t.revoked_at else ("live" if t.live else "expired")
            used = f"last used {t.last_used_at:%Y-%m-%d %H:%M} UTC from {t.last_used_ip or '?'}" if t.last_used_at else "never used"
            self.stdout.write(f"{t.name}\texpires {t.expires_at:%Y-%m-%d}\t{state}\t{used}")
        if not rows:
            self.stdout.write("No SCIM tokens.")

    def _revoke(self, *, name: str, **_):
        if not scim_tokens.revoke(name):
            raise CommandError(f"No live SCIM token named '{name}'.")
        self.stdout.write(f"Revoked '{name}'.")
