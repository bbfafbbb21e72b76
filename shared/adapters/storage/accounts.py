"""Azure Storage service clients from settings: a connection string, or URIs + managed identity.

The Functions host reads the same ``AzureWebJobsStorage`` settings for its queue trigger, so the app
and the host always talk to the same account.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.data.tables.aio import TableServiceClient
from azure.identity.aio import DefaultAzureCredential
from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from shared.config import StorageSettings

RequestHook = Callable[[PipelineRequest[Any]], None]
"""Called with every request a client sends (tests record what the app touches)."""


def transport_options(request_hook: RequestHook | None = None) -> dict[str, Any]:
    """Keyword arguments every storage client is built with.

    Proxy settings from the environment are honoured only when the environment has any. With
    azure-core's default (``use_env_settings=True``) aiohttp looks them up, and ``~/.netrc``,
    in a worker thread for every request: two thread hand-offs and a file read per storage
    call, which at onboarding rates was a third of a worker's CPU (profiled), for settings a
    Functions host does not have.
    """
    options: dict[str, Any] = {"use_env_settings": bool(urllib.request.getproxies_environment())}
    if request_hook:
        options["raw_request_hook"] = request_hook
    return options


def table_service(
    settings: StorageSettings, request_hook: RequestHook | None = None
) -> TableServiceClient:
    """A Table service client for the app's state tables."""
    options = transport_options(request_hook)
    if settings.connection_string:
        return TableServiceClient.from_connection_string(settings.connection_string, **options)
    assert settings.table_service_uri
    return TableServiceClient(
        settings.table_service_uri,
        credential=DefaultAzureCredential(managed_identity_client_id=settings.client_id),
        **options,
    )


def queue_client(
    settings: StorageSettings, queue_name: str, request_hook: RequestHook | None = None
) -> QueueClient:
    """A client for one queue, Base64-encoded as the Functions queue trigger expects."""
    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    options = transport_options(request_hook)
    if settings.connection_string:
        return QueueClient.from_connection_string(
            settings.connection_string,
            queue_name,
            message_encode_policy=encode,
            message_decode_policy=decode,
            **options,
        )
    assert settings.queue_service_uri
    service = QueueServiceClient(
        settings.queue_service_uri,
        credential=DefaultAzureCredential(managed_identity_client_id=settings.client_id),
        **options,
    )
    return service.get_queue_client(
        queue_name, message_encode_policy=encode, message_decode_policy=decode
    )
