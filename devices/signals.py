"""What the devices app announces, so that higher apps can react without
devices importing them."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with ``owner`` after every write to a trader's inventory, inside the
# write's transaction; the checklist app re-scores the trader on it. The
# heartbeat sweep sends ``owner=None`` and ``owners`` (a batch) instead, and
# they are re-scored together.
inventory_changed = Signal()
