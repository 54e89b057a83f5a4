"""A person's alert channels from the command line (INVENTORY.md): add, list, test, remove; and rekey after a key rotation."""

from __future__ import annotations

from django.core.management.base import CommandError

from accounts import channels
from accounts.management.base import GatecheckCommand
from accounts.models import AlertChannel, User


class Command(GatecheckCommand):
    help = "Add, list, test or remove a person's apprise alert channels; 'rekey' seals every channel URL under the first key."

    def add_arguments(self, parser):
        parser.add_argument("--user", help="Whose channels (USERNAME); not for rekey.")
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Add an apprise URL and print the channel's id.")
        add.add_argument("url")
        add.add_argument("--name", default="")
        add.add_argument("--events", default=",".join(channels.DEFAULT_EVENTS), help=f"Comma-separated, from: {', '.join(channels.EVENTS)}.")
        actions.add_parser("list", help="Id, name and the masked URL of each channel.")
        test = actions.add_parser("test", help="Send a test message now and say whether it went.")
        test.add_argument("id", type=int)
        remove = actions.add_parser("remove")
        remove.add_argument("id", type=int)
        actions.add_parser("rekey", help="After putting a new key first in GATECHECK_CHANNEL_KEYS.")

    def handle(self, *args, action: str, user: str | None, **options):
        if action == "rekey":
            self.stdout.write(f"Sealed {channels.rekey()} channel URL(s) under the first key.")
            return
        if not user:
            raise CommandError("--user USERNAME is required.")
        person = User.objects.filter(username=User.normalize_username(user)).first()
        if person is None:
            raise CommandError(f"No user named '{user}'.")
        getattr(self, f"_{action}")(person, **options)

    def _add(self, person: User, *, url: str, name: str, events: str, **_):
        try:
            channel = channels.add(user=person, url=url, name=name, events=[e.strip() for e in events.split(",") if e.strip()])
        except channels.ChannelRefused as refused:
            raise CommandError(f"No channel added: {refused}") from None
        self.stdout.write(str(channel.pk))

    def _list(self, person: User, **_):
        rows = AlertChannel.objects.filter(user=person).order_by("pk")
        for c in rows:
            state = "failing" if c.failures >= channels.FAILING_AFTER else "ok"
            self.stdout.write(f"{c.pk}\t{c.name}\t{c.url_shown}\t{','.join(c.events)}\t{state}")
        if not rows:
            self.stdout.write("No alert channels.")

    def _channel(self, person: User, pk: int) -> AlertChannel:
        channel = AlertChannel.objects.filter(user=person, pk=pk).first()
        if channel is None:
            raise CommandError(f"{person.username} has no alert channel {pk}.")
        return channel

    def _test(self, person: User, *, id: int, **_):
        channel = self._channel(person, id)
        why = channels.deliver(channel, "[Gatecheck] Test message", f"This is a test of your alert channel '{channel.name}'. It works.")
        if why is not None:
            raise CommandError(f"Not delivered to '{channel.name}': {why}.")
        self.stdout.write(f"Delivered to '{channel.name}'.")

    def _remove(self, person: User, *, id: int, **_):
        channel = self._channel(person, id)
        channels.remove(channel=channel)
        self.stdout.write(f"Removed '{channel.name}'.")
