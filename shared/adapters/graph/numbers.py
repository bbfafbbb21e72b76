"""Teams telephone number management through msgraph-sdk (Graph v1.0).

``assignNumber`` answers ``202 Accepted`` with a ``Location`` header that points at a
``telephoneNumberLongRunningOperation``; the SDK's ``post()`` returns None, so the header is
captured with ``HeadersInspectionHandlerOption``. The operation is read raw
(``NativeResponseHandler``) because its documented body wraps the entity in ``value`` while the SDK
expects it at the root; both shapes are accepted.

An operation can end ``skipped`` (Graph v1.0 lists it; the SDK's enum does not). What was skipped
is not documented, so Teams is asked: a number that is where the change wanted it counts as done,
anything else is a temporary failure that names the status (the change is tried again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_http.middleware.options import ResponseHandlerOption
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_assign_number.assign_number_post_request_body import (  # noqa: E501
    AssignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.microsoft_graph_teams_administration_unassign_number.unassign_number_post_request_body import (  # noqa: E501
    UnassignNumberPostRequestBody,
)
from msgraph.generated.admin.teams.telephone_number_management.number_assignments.number_assignments_request_builder import (  # noqa: E501
    NumberAssignmentsRequestBuilder,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.teams_administration.assignment_category import AssignmentCategory
from msgraph.generated.models.teams_administration.number_type import NumberType as GraphNumberType
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph.failures import raise_classified, raise_for_status
from shared.config import NumberType
from shared.core.errors import OperationPendingError, TemporaryError
from shared.core.graph_errors import classify_operation_failure
from shared.core.records import TeamsNumber

_GRAPH_NUMBER_TYPES = {
    NumberType.DIRECT_ROUTING: GraphNumberType.DirectRouting,
    NumberType.CALLING_PLAN: GraphNumberType.CallingPlan,
    NumberType.OPERATOR_CONNECT: GraphNumberType.OperatorConnect,
}
_MAX_POLL_INTERVAL_SECONDS = 10.0
LIST_PAGE_SIZE = 1000  # the most numberAssignments returns per page


class GraphTeamsNumbers:
    """Implements ``TeamsNumbers`` with msgraph-sdk."""

    def __init__(
        self,
        client: GraphServiceClient,
        *,
        number_type: NumberType,
        poll_interval_seconds: float,
        operation_timeout_seconds: float,
    ) -> None:
        self._client = client
        self._number_type = number_type  # the tenant's: every write uses it
        self._poll_interval = poll_interval_seconds
        self._timeout = operation_timeout_seconds

    @property
    def _numbers(self) -> Any:
        return self._client.admin.teams.telephone_number_management.number_assignments

    async def list_assignments(self) -> dict[str, str]:
        """Every number Teams has on a target, read raw page by page (``$top=1000``)."""
        query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
            top=LIST_PAGE_SIZE
        )
        assignments: dict[str, str] = {}
        page = await self._numbers.get(_raw(query))
        while True:
            raise_for_status(page)
            body = page.json()
            for item in body.get("value") or []:
                if item.get("assignmentTargetId"):
                    assignments[str(item["telephoneNumber"])] = str(item["assignmentTargetId"])
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return assignments
            page = await self._numbers.with_url(next_link).get(_raw(None))

    async def find_number(self, number: str) -> TeamsNumber | None:
        """The number's Teams record (``$filter=telephoneNumber eq '…'``), or None."""
        query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
            filter=f"telephoneNumber eq '{number}'", top=1
        )
        try:
            page = await self._numbers.get(RequestConfiguration(query_parameters=query))
        except ODataError as error:
            raise_classified(error)
        for item in (page.value if page else None) or []:
            state = item.activation_state
            return TeamsNumber(
                number=item.telephone_number or number,
                target_id=item.assignment_target_id or None,
                activation_state=state.value if state is not None else None,
            )
        return None

    async def assign_number(
        self,
        number: str,
        user_id: str,
        *,
        operation_location: str | None = None,
        landed: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Assign the number as the user's primary number and wait for the operation.

        With ``landed``, the first look after the poll interval asks it (the caller's read-back)
        instead of the operation; the operation is polled only while it answers False. An
        operation that ends ``skipped`` is done if ``landed`` (else the number's Teams record)
        shows the number on the user.
        """
        done = landed or self._held_by(number, user_id)
        if operation_location:
            await self._wait_for_operation(operation_location, number, landed, done)
            return
        body = AssignNumberPostRequestBody(
            telephone_number=number,
            assignment_target_id=user_id,
            number_type=_GRAPH_NUMBER_TYPES[self._number_type],
            assignment_category=AssignmentCategory.Primary,
        )
        action = self._numbers.microsoft_graph_teams_administration_assign_number
        await self._run_action(
            action.to_post_request_information(body), "assignNumber", number, landed, done
        )

    async def unassign_number(self, number: str) -> None:
        """Take the number off its target and wait for the operation."""
        body = UnassignNumberPostRequestBody(
            telephone_number=number, number_type=_GRAPH_NUMBER_TYPES[self._number_type]
        )
        action = self._numbers.microsoft_graph_teams_administration_unassign_number
        await self._run_action(action.to_post_request_information(body), "unassignNumber",
                               number, None, self._held_by(number, None))

    def _held_by(self, number: str, target_id: str | None) -> Callable[[], Awaitable[bool]]:
        """A check whether the number's Teams record has ``target_id`` on it (None: nobody)."""

        async def check() -> bool:
            record = await self.find_number(number)
            return (record.target_id if record is not None else None) == target_id

        return check

    async def _run_action(
        self,
        request: Any,
        name: str,
        number: str,
        landed: Callable[[], Awaitable[bool]] | None,
        done: Callable[[], Awaitable[bool]],
    ) -> None:
        # The SDK's post() returns None, and HeadersInspectionHandlerOption misses the Location of
        # a retried request (kiota-http drops request options after the first attempt). Sending
        # the SDK-built request with a native response handler returns the final response itself.
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        response = await self._client.request_adapter.send_primitive_async(request, "bytes", {})
        raise_for_status(response)
        location = response.headers.get("location")
        if not location:
            raise TemporaryError(f"{name} for {number} was accepted without a Location")
        await self._wait_for_operation(location, number, landed, done, name)

    async def _wait_for_operation(
        self,
        location: str,
        number: str,
        landed: Callable[[], Awaitable[bool]] | None,
        done: Callable[[], Awaitable[bool]],
        name: str = "assignNumber",
    ) -> None:
        deadline = time.monotonic() + self._timeout
        interval = self._poll_interval
        if landed is not None:
            # Most operations finish within one interval, and the caller reads the user back
            # afterwards anyway: that read answers "done?" and saves every operation poll.
            await asyncio.sleep(interval)
            if await landed():
                return
        operations = self._client.admin.teams.telephone_number_management.operations
        builder = operations.by_telephone_number_long_running_operation_id("_").with_url(location)
        while True:
            response = await builder.get(_raw(None))
            status, detail = _operation_state(response)
            if status == "succeeded":
                return
            if status == "skipped":
                if await done():
                    return
                raise TemporaryError(
                    f"the Teams operation of {name} for {number} ended 'skipped'"
                    f"{': ' + detail if detail else ''}, and Teams does not show the change "
                    "made; it is tried again"
                )
            if status == "failed":
                raise classify_operation_failure(detail or f"assignment of {number} failed")
            if time.monotonic() + interval > deadline:
                raise OperationPendingError(
                    f"the Teams operation for {number} is still {status} after "
                    f"{self._timeout:.0f}s; it is checked again later",
                    location=location, retry_after_seconds=max(30.0, self._timeout),
                )
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, _MAX_POLL_INTERVAL_SECONDS)


def _raw(query: Any) -> RequestConfiguration[Any]:
    return RequestConfiguration(
        query_parameters=query, options=[ResponseHandlerOption(NativeResponseHandler())]
    )


def _operation_state(response: Any) -> tuple[str, str]:
    """(status, statusDetail) of a raw operation response, at the root or inside ``value``."""
    raise_for_status(response)
    body = response.json()
    entity = body.get("value", body) if isinstance(body, dict) else {}
    if not isinstance(entity, dict):
        entity = {}
    details = [
        str(item.get("statusDetail") or "")
        for item in entity.get("numbers") or []
        if isinstance(item, dict)
    ]
    return str(entity.get("status") or "unknown"), "; ".join(d for d in details if d)
