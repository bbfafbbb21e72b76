"""Teams Number Sync: gives Teams users the phone numbers their company keeps in Active Directory.

Layers (held by import-linter, see ``.importlinter``):

* pure core — ``phone_numbers``, ``outcomes``, ``messages``, ``planner``: rules and data, no I/O;
* ports — ``ports``: the typed interfaces the core's callers talk to;
* service — ``sync_service``: gathers, plans, applies, records;
* adapters — ``adapters.*``: msgraph-sdk and Azure Storage behind the ports;
* composition — ``config`` and ``runtime``: settings from the environment, wiring.
"""
