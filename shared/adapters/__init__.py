"""Thin, typed adapters that implement ``shared.service.ports``: ``graph`` (msgraph-sdk) and
``storage`` (Azure Table and Queue storage)."""
