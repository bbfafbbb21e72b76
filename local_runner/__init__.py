"""Runs the app's own Functions entry points locally, as the Functions host would.

Not deployed (see ``.funcignore``). Core Tools cannot be installed on every machine; this runner
keeps the host's queue semantics (batch size, visibility timeout on failure, ``maxDequeueCount`` →
``number-assignments-poison``) so the demo and the integration tests exercise the real triggers
against real Azure Storage semantics (Azurite).
"""
