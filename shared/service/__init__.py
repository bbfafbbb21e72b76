"""The async shell: reads through the ports, asks the core what to do, performs it, records it.

The timer run, the directory refresh, the per-message handler, holds and approvals. It knows the
ports (``shared.service.ports``), never an adapter: the same code runs under the Functions host,
the local runner and the unit tests' fakes.
"""
