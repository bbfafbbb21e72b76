"""Teams Number Sync: gives Teams users the phone numbers their company keeps in Active Directory.

The packages are the layers (held by import-linter, see ``.importlinter``):

* ``core`` — the rules and every decision, pure: the number rule, the planners, what a run
  writes (``run_decisions``), the per-message flows as sans-I/O steps (``assignment_steps``,
  ``policy_steps``), what is recorded (``recording``);
* ``service`` — the async shell on one ``TenantContext``: the timer run (``timer_run``), the
  queue function (``message_handler``), the directory refresh, holds; it knows only the ports;
* ``adapters`` — ``graph`` (msgraph-sdk) and ``storage`` (Azure Tables and Queues) behind the
  ports;
* composition — ``config``, ``runtime`` (wiring one context), ``cli``, ``http_requests``.
"""
