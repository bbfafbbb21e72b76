"""Test-session fixtures shared by every folder."""

pytest_plugins = ["tests.azurite_fixtures"]
