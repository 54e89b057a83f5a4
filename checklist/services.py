"""Writes with side effects for readiness: stored daily snapshots."""

from __future__ import annotations


def snapshot_refresh(user) -> None:
    """Re-score ``user`` today and store the result (ReadinessSnapshot).

    Called after every change to a trader's inventory so that the desk page
    can read stored scores instead of re-scoring.
    """
    # Filled in with the readiness engine (issue 4).
    return None
