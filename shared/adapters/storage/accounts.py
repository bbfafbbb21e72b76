"""Azure Storage service clients from settings: a connection string, or URIs + managed identity.

The Functions host reads the same ``AzureWebJobsStorage`` settings for its queue trigger, so the app
and the host always talk to the same account.
"""

from __future__ import annotations

from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import DefaultAzureCredential
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.config import StorageSettings


def table_service(settings: StorageSettings) -> TableServiceClient:
    """A Table service client for the app's state tables."""
    if settings.connection_string:
        return TableServiceClient.from_connection_string(settings.connection_string)
    assert settings.table_service_uri
    return TableServiceClient(
        settings.table_service_uri,
        credential=DefaultAzureCredential(managed_identity_client_id=settings.client_id),
    )


def queue_client(settings: StorageSettings, queue_name: str) -> QueueClient:
    """A client for one queue, Base64-encoded as the Functions queue trigger expects."""
    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    if settings.connection_string:
        return QueueClient.from_connection_string(
            settings.connection_string,
            queue_name,
            message_encode_policy=encode,
            message_decode_policy=decode,
        )
    assert settings.queue_service_uri
    service = QueueServiceClient(
        settings.queue_service_uri,
        credential=DefaultAzureCredential(managed_identity_client_id=settings.client_id),
    )
    return service.get_queue_client(
        queue_name, message_encode_policy=encode, message_decode_policy=decode
    )
