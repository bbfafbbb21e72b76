"""Thin, typed adapters that implement ``shared.ports`` against msgraph-sdk and Azure Storage."""
