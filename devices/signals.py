"""What the devices app announces, so that higher apps can react without
devices importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``owner`` after every write to a trader's inventory, inside the
# write's transaction; the checklist app re-scores the trader on it. The
# heartbeat sweep sends ``owner=None`` and ``owners`` (a batch) instead, and
# they are re-scored together.
inventory_changed = Signal()

# Sent with ``owner`` to learn which broker the trader uses (the checklist app
# keeps the trading profile and answers with the broker's code). No answer
# means the default broker.
broker_wanted = Signal()
