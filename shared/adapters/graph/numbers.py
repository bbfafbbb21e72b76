"""Teams telephone number management through msgraph-sdk (Graph v1.0).

``assignNumber`` is sent and not waited for: its operation's Location is returned, and the queue
function looks later (``read_operation`` is one read); ``unassignNumber`` is waited for here,
polling with backoff. Both answer ``202 Accepted`` with a ``Location`` header that points at a
``telephoneNumberLongRunningOperation``; the SDK's ``post()`` returns None, so the header is
captured with ``HeadersInspectionHandlerOption``. The operation is read raw
(``NativeResponseHandler``) because its documented body wraps the entity in ``value`` while the SDK
expects it at the root; both shapes are accepted.

An operation can end ``skipped`` (Graph v1.0 lists it; the SDK's enum does not). What was skipped
is not documented, so Teams is asked: for an unassignment waited for here, a number on nobody
counts as done, anything else is a temporary failure that names the status; an assignment's
``skipped`` is the queue function's to decide (``shared.core.assignment_steps``).
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
from msgraph.generated.models.teams_administration.assignment_category import AssignmentCategory
from msgraph.generated.models.teams_administration.number_type import NumberType as GraphNumberType
from msgraph.graph_service_client import GraphServiceClient

from shared.adapters.graph.bodies import (
    json_object,
    kind,
    odata_link,
    optional_list,
    optional_text,
    required_text,
    value_items,
)
from shared.adapters.graph.failures import raise_for_status
from shared.core.errors import OperationPendingError, TemporaryError, UnreadableAnswerError
from shared.core.graph_errors import classify_operation_failure
from shared.core.records import OperationState, TeamsNumber
from shared.core.tenant_registry import NumberType

_GRAPH_NUMBER_TYPES = {
    NumberType.DIRECT_ROUTING: GraphNumberType.DirectRouting,
    NumberType.CALLING_PLAN: GraphNumberType.CallingPlan,
    NumberType.OPERATOR_CONNECT: GraphNumberType.OperatorConnect,
}
_MAX_POLL_INTERVAL_SECONDS = 10.0
LIST_PAGE_SIZE = 1000  # the most numberAssignments returns per page
LIST_ROUTE = "GET /admin/teams/telephoneNumberManagement/numberAssignments"
FIND_ROUTE = f"{LIST_ROUTE}?$filter=telephoneNumber eq"
OPERATION_ROUTE = "GET /admin/teams/telephoneNumberManagement/operations/{id}"


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
        """Every number Teams has on a target, read raw page by page (``$top=1000``).

        Graph documents ``$top``/``$skip`` for this list and no ``@odata.nextLink``: a next
        link is followed when there is one; without one, a full page is followed by the next
        ``$skip``, and the list ends at the first short page.

        Raises:
            UnreadableAnswerError: a page is not a list of numbers, or ``$skip`` answered
                numbers already read (the list would never end).
        """
        assignments: dict[str, str] = {}
        seen: set[str] = set()
        read = 0
        page = await self._numbers.get(_raw(_page_query(0)))
        while True:
            raise_for_status(page)
            body = json_object(page, LIST_ROUTE)
            items = value_items(body, LIST_ROUTE, one_object_is_a_list=True)
            new = 0
            for position, item in enumerate(items):
                record = _number_record(item, LIST_ROUTE, f"number {read + position}")
                if record.number not in seen:
                    new += 1
                    seen.add(record.number)
                if record.target_id:
                    assignments[record.number] = record.target_id
            if items and not new:
                raise UnreadableAnswerError(
                    LIST_ROUTE, f"the page after {read} numbers repeats numbers already read"
                )
            read += len(items)
            next_link = odata_link(body, "@odata.nextLink", LIST_ROUTE)
            if next_link:
                page = await self._numbers.with_url(next_link).get(_raw(None))
            elif len(items) < LIST_PAGE_SIZE:
                return assignments
            else:
                page = await self._numbers.get(_raw(_page_query(read)))

    async def find_number(self, number: str) -> TeamsNumber | None:
        """The number's Teams record (``$filter=telephoneNumber eq '…'``), or None when the
        answer is an empty list.

        Raises:
            UnreadableAnswerError: the answer is not a list (a single object is read as a
                one-item list), or it lists another number than the one asked for.
        """
        query = NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
            filter=f"telephoneNumber eq '{number}'", top=1
        )
        response = await self._numbers.get(_raw(query))
        raise_for_status(response)
        body = json_object(response, FIND_ROUTE)
        records = [
            _number_record(item, FIND_ROUTE, f"number {position}")
            for position, item in enumerate(
                value_items(body, FIND_ROUTE, one_object_is_a_list=True)
            )
        ]
        for record in records:
            if _digits(record.number) != _digits(number):
                raise UnreadableAnswerError(
                    FIND_ROUTE, f"asked for {number}, the answer lists {record.number}"
                )
            return record
        return None

    async def assign_number(self, number: str, user_id: str) -> str:
        """Ask Teams to assign the number as the user's primary one; returns the Location of
        its operation (202 Accepted). Nothing waits here: Teams carries it out in its own time,
        and the caller looks whether it landed later (``read_operation`` when it did not).
        """
        body = AssignNumberPostRequestBody(
            telephone_number=number,
            assignment_target_id=user_id,
            number_type=_GRAPH_NUMBER_TYPES[self._number_type],
            assignment_category=AssignmentCategory.Primary,
        )
        action = self._numbers.microsoft_graph_teams_administration_assign_number
        return await self._send_action(
            action.to_post_request_information(body), "assignNumber", number
        )

    async def read_operation(self, location: str) -> OperationState:
        """The operation's status and detail text, from one raw read.

        Raises:
            PermanentError: Teams does not know the operation (404).
            UnreadableAnswerError: no operation object, or one without a ``status``.
        """
        operations = self._client.admin.teams.telephone_number_management.operations
        builder = operations.by_telephone_number_long_running_operation_id("_").with_url(location)
        status, detail = _operation_state(await builder.get(_raw(None)))
        return OperationState(status, detail)

    async def unassign_number(self, number: str) -> None:
        """Take the number off its target and wait for the operation."""
        body = UnassignNumberPostRequestBody(
            telephone_number=number, number_type=_GRAPH_NUMBER_TYPES[self._number_type]
        )
        action = self._numbers.microsoft_graph_teams_administration_unassign_number
        location = await self._send_action(
            action.to_post_request_information(body), "unassignNumber", number
        )
        await self._wait_for_operation(location, number, self._held_by(number, None))

    def _held_by(self, number: str, target_id: str | None) -> Callable[[], Awaitable[bool]]:
        """A check whether the number's Teams record has ``target_id`` on it (None: nobody)."""

        async def check() -> bool:
            record = await self.find_number(number)
            return (record.target_id if record is not None else None) == target_id

        return check

    async def _send_action(self, request: Any, name: str, number: str) -> str:
        """Send an assign or unassign action; the Location of its operation."""
        # The SDK's post() returns None, and HeadersInspectionHandlerOption misses the Location of
        # a retried request (kiota-http drops request options after the first attempt). Sending
        # the SDK-built request with a native response handler returns the final response itself.
        request.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        response = await self._client.request_adapter.send_primitive_async(request, "bytes", {})
        raise_for_status(response)
        location = response.headers.get("location")
        if not location:
            raise TemporaryError(f"{name} for {number} was accepted without a Location")
        return str(location)

    async def _wait_for_operation(
        self,
        location: str,
        number: str,
        done: Callable[[], Awaitable[bool]],
        name: str = "unassignNumber",
    ) -> None:
        # An unassignment is waited for here: it is rare (a leaver, a changed number), and the
        # claim is let go only once Teams has taken the number back.
        deadline = time.monotonic() + self._timeout
        interval = self._poll_interval
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


def _page_query(
    skip: int,
) -> NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters:
    return NumberAssignmentsRequestBuilder.NumberAssignmentsRequestBuilderGetQueryParameters(
        top=LIST_PAGE_SIZE, skip=skip or None
    )


def _number_record(item: dict[str, Any], route: str, where: str) -> TeamsNumber:
    """A numberAssignment item: ``telephoneNumber`` must be there, and ``assignmentTargetId``
    too (null when nobody has it): a missing target cannot be read as "free"."""
    number = required_text(item, "telephoneNumber", route, where)
    if "assignmentTargetId" not in item:
        raise UnreadableAnswerError(route, f"{where} ({number}) has no 'assignmentTargetId'")
    return TeamsNumber(
        number=number,
        target_id=optional_text(item, "assignmentTargetId", route, number),
        activation_state=optional_text(item, "activationState", route, number),
    )


def _digits(number: str) -> str:
    return number.removeprefix("+")


def _raw(query: Any) -> RequestConfiguration[Any]:
    return RequestConfiguration(
        query_parameters=query, options=[ResponseHandlerOption(NativeResponseHandler())]
    )


def _operation_state(response: Any) -> tuple[str, str]:
    """(status, statusDetail) of a raw operation response, at the root or inside ``value``.

    Raises:
        UnreadableAnswerError: no operation object, or one without a ``status``.
    """
    raise_for_status(response)
    body = json_object(response, OPERATION_ROUTE)
    entity = body.get("value", body)
    if not isinstance(entity, dict):
        raise UnreadableAnswerError(OPERATION_ROUTE, f"'value' is {kind(entity)}, not an operation")
    status = required_text(entity, "status", OPERATION_ROUTE, "the operation")
    details: list[str] = []
    numbers = optional_list(entity, "numbers", OPERATION_ROUTE, "the operation")
    for position, item in enumerate(numbers):
        if not isinstance(item, dict):
            raise UnreadableAnswerError(
                OPERATION_ROUTE, f"the operation's numbers[{position}] is {kind(item)}"
            )
        detail = optional_text(item, "statusDetail", OPERATION_ROUTE, f"numbers[{position}]")
        if detail:
            details.append(detail)
    return status, "; ".join(details)
