"""The pure core: the rules and every decision, as functions of data.

The vocabulary (``outcomes``), the records, the number rule, the tenant rules, the planners, member
delta, pace slots, readiness, Graph error classification and the queue message schema. Nothing
here does I/O: no asyncio, no Azure or Graph SDK, nothing from ``shared.service`` or
``shared.adapters`` (``.importlinter`` holds this).
"""
