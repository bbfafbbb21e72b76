"""Teams Number Sync — the Azure Functions entry points (Python v2 programming model).

Table of contents:

* ``sync_scheduled`` — timer: read the voice group, plan, enqueue a message per change.
* ``assign_user``    — queue ``number-assignments``: validate, claim, assign, record one change.
* ``sync_now``       — HTTP POST /api/sync (function key): the same run now; ``?dryRun=true``
                        answers every decision without writing anything.
* ``list_holds``     — HTTP GET /api/holds[?status=...] (function key): unassignments the guard
                        holds.
* ``approve_holds``  — HTTP POST /api/holds/approve (function key), body
                        ``{"approvedBy": "...", "runId": "..."}``: carry them out.

Each trigger only translates between the host and ``shared.runtime``; the rules and every
decision live in ``shared.core``.
What each HTTP trigger accepts is ``shared.http_requests``; a request it refuses is answered
``{"error": "<field>", "message": "..."}`` (400; 413 for a body too large) and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os

import azure.functions as func

from shared.adapters.storage.queue import ASSIGNMENT_QUEUE
from shared.config import ConfigError, sync_schedule_from_environ
from shared.core.errors import PermanentError, TemporaryError
from shared.http_requests import ApprovalRequest, HoldsQuery, RequestError, SyncRequest
from shared.runtime import RuntimeHolder, hold_json

app = func.FunctionApp()
runtime = RuntimeHolder(os.environ)
log = logging.getLogger("teams_number_sync")


@app.timer_trigger(
    schedule=sync_schedule_from_environ(os.environ),
    arg_name="timer",
    run_on_startup=False,
    use_monitor=True,
)
async def sync_scheduled(timer: func.TimerRequest) -> None:
    """Scheduled full sync of the tenant's voice group."""
    if timer.past_due:
        log.warning("sync timer is past due; running now")
    await (await runtime.get()).sync()


@app.queue_trigger(arg_name="msg", queue_name=ASSIGNMENT_QUEUE, connection="AzureWebJobsStorage")
async def assign_user(msg: func.QueueMessage) -> None:
    """One member: validate the number, claim it, assign it in Teams, record the outcome."""
    dequeue_count = getattr(msg, "dequeue_count", None) or 1
    await (await runtime.get()).assign(msg.get_body(), dequeue_count)


@app.route(route="sync", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def sync_now(req: func.HttpRequest) -> func.HttpResponse:
    """Manual trigger from the portal or a script; answers the run's summary as JSON."""
    try:
        request = SyncRequest.from_http(req.params, req.get_body())
    except RequestError as error:
        return _refused(error)
    try:
        summary = await (await runtime.get()).sync(dry_run=request.dry_run)
    except ConfigError as error:
        return _json({"error": "configuration", "message": str(error)}, 500)
    except TemporaryError as error:
        headers = {"Retry-After": str(int(error.retry_after_seconds or 60))}
        return _json({"error": "temporary", "message": error.message}, 503, headers)
    except PermanentError as error:
        return _json({"error": error.reason.value, "message": error.message}, 502)
    return _json(summary.to_json(), 200)


@app.route(route="holds", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def list_holds(req: func.HttpRequest) -> func.HttpResponse:
    """The unassignments the mass-unassign guard holds, waiting for approval."""
    try:
        query = HoldsQuery.from_http(req.params)
    except RequestError as error:
        return _refused(error)
    holds = await (await runtime.get()).ledger.holds(query.ledger_status)
    return _json({"holds": [hold_json(hold) for hold in holds]}, 200)


@app.route(route="holds/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def approve_holds(req: func.HttpRequest) -> func.HttpResponse:
    """Approve held unassignments; records who approved, then enqueues them."""
    try:
        approval = ApprovalRequest.from_http(req.params, req.get_body())
    except RequestError as error:
        return _refused(error)
    approved = await (await runtime.get()).approve_holds(approval.approved_by, approval.run_id)
    if approval.run_id is not None and not approved:
        return _refused(approval.no_pending_holds())
    return _json({"approved": [hold_json(hold) for hold in approved]}, 200)


def _refused(error: RequestError) -> func.HttpResponse:
    return _json(error.to_json(), error.status)


def _json(
    body: object, status: int, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype="application/json", headers=headers
    )
