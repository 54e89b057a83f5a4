"""Gatecheck's readiness domain, with no Django in it.

The vocabulary, the rule catalog and its findings, due dates, masking and the
secret detector live here, below every app: ``accounts``, ``devices``,
``checklist`` and ``desk`` import this package, and it imports none of them.
"""
