"""Teams Number Sync — the Azure Functions entry points (Python v2 programming model).

Table of contents:

* ``sync_scheduled`` — timer: enqueue a ``tenant-syncs`` message per active tenant that is due.
* ``sync_tenant``    — queue ``tenant-syncs``: one tenant's run (consent check, read the voice
                        group, plan, enqueue a message per change) and its health record.
* ``assign_user``    — queue ``number-assignments``: validate, claim, assign, record one change.
* ``sync_now``       — HTTP POST /api/sync: an app serving only its ``TENANT_ID`` tenant runs it
                        now and answers the summary (``?dryRun=true``: every decision, nothing
                        written); with a registry, every due tenant is enqueued (202).
* ``list_holds`` / ``approve_holds`` — HTTP GET /api/holds, POST /api/holds/approve: the
                        ``TENANT_ID`` tenant's held unassignments.
* ``tenants_*``      — HTTP /api/tenants…: register, check, import numbers, activate, pause,
                        resume, remove, list; one tenant's sync, holds and audit trail.
* ``tenants_report`` — HTTP GET /api/tenants/{id}/report: the helpdesk report (html, csv, json).

All HTTP routes need the function key. Each trigger only translates between the host and
``shared.runtime``; the rules and every decision live in ``shared.core``. What each HTTP trigger
accepts is ``shared.http_requests``; a request it refuses is answered
``{"error": "<field>", "message": "..."}`` (400; 404 for an unknown tenant; 409 for an action the
tenant's state does not allow; 413 for a body too large) and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable

import azure.functions as func

from shared.adapters.storage.queue import ASSIGNMENT_QUEUE, TENANT_SYNC_QUEUE
from shared.config import ConfigError, sync_schedule_from_environ
from shared.core.audit import Actor
from shared.core.errors import PermanentError, TemporaryError
from shared.core.helpdesk_report import RenderedReport
from shared.core.report_page import CONTENT_SECURITY_POLICY_HEADER, render_report
from shared.core.telemetry_events import APP_LOGGER_NAME
from shared.core.tenant_registry import (
    NumberImportError,
    RegistryError,
    TenantAction,
    TenantExistsError,
    TransitionRefused,
)
from shared.http_requests import (
    ApprovalRequest,
    AuditQuery,
    HoldsQuery,
    NumbersImportRequest,
    ReportQuery,
    RequestError,
    SyncRequest,
    TenantAddRequest,
    TenantChangeRequest,
    TenantPath,
    http_actor,
    signed_in_principal,
    with_signed_in_approver,
)
from shared.runtime import (
    RuntimeHolder,
    TenantNotActiveError,
    UnknownTenantError,
    hold_json,
    record_json,
)

app = func.FunctionApp()
runtime = RuntimeHolder(os.environ)
# A child of the logger the worker sends to Application Insights
# (PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME).
log = logging.getLogger(f"{APP_LOGGER_NAME}.function_app")


@app.timer_trigger(
    schedule=sync_schedule_from_environ(os.environ),
    arg_name="timer",
    run_on_startup=False,
    use_monitor=True,
)
async def sync_scheduled(timer: func.TimerRequest) -> None:
    """Start a run for every active tenant that is due: one tenant-sync message each."""
    if timer.past_due:
        log.warning("sync timer is past due; running now")
    current = await runtime.get()
    await current.fan_out()
    await current.purge_expired_audit()


@app.queue_trigger(arg_name="msg", queue_name=TENANT_SYNC_QUEUE, connection="AzureWebJobsStorage")
async def sync_tenant(msg: func.QueueMessage) -> None:
    """One tenant's run; its trouble ends in the tenant's health record, not in a retry."""
    dequeue_count = getattr(msg, "dequeue_count", None) or 1
    await (await runtime.get()).run_tenant_sync(msg.get_body(), dequeue_count)


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

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        actor = _actor(req, current.settings.app_service_authentication)
        if not await current.serves_one_tenant():
            if request.dry_run:
                return _refused(RequestError("dryRun", (
                    "dryRun=true: this app serves several tenants; preview one with "
                    "POST /api/tenants/{tenantId}/sync?dryRun=true")))
            return _json((await current.fan_out("POST /api/sync", actor=actor)).to_json(), 202)
        summary = await current.sync(dry_run=request.dry_run, actor=actor)
        return _json(summary.to_json(), 200)

    return await _answered(run)


@app.route(route="holds", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def list_holds(req: func.HttpRequest) -> func.HttpResponse:
    """The unassignments the mass-unassign guard holds, waiting for approval."""
    try:
        query = HoldsQuery.from_http(req.params)
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        holds = await (await runtime.get()).ledger.holds(query.ledger_status)
        return _json({"holds": [hold_json(hold) for hold in holds]}, 200)

    return await _answered(run)


@app.route(route="holds/approve", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def approve_holds(req: func.HttpRequest) -> func.HttpResponse:
    """Approve held unassignments; records who approved, then enqueues them."""
    try:
        approval = ApprovalRequest.from_http(req.params, _approval_body(req))
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        caller = _actor(req, current.settings.app_service_authentication).caller
        approved = await current.approve_holds(approval.approved_by, approval.run_id,
                                               caller=caller)
        if approval.run_id is not None and not approved:
            return _refused(approval.no_pending_holds())
        return _json({"approved": [hold_json(hold) for hold in approved]}, 200)

    return await _answered(run)


# -- many tenants ------------------------------------------------------------------------------

@app.route(route="tenants", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_list(req: func.HttpRequest) -> func.HttpResponse:
    """Every tenant: state, health, last run, outcome counts, pending holds."""
    del req

    async def run() -> func.HttpResponse:
        lines = await (await runtime.get()).overview()
        return _json({"tenants": [line.to_json() for line in lines]}, 200)

    return await _answered(run)


@app.route(route="tenants", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_add(req: func.HttpRequest) -> func.HttpResponse:
    """Register a customer tenant (state onboarding); answers its admin-consent URL."""
    try:
        request = TenantAddRequest.from_http(req.params, req.get_body())
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        added = await current.add_tenant(
            request.record_fields, by=request.created_by,
            caller=_actor(req, current.settings.app_service_authentication).caller)
        return _json({"tenant": record_json(added.record), "consentUrl": added.consent_url},
                     201)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/check", methods=["POST"],
           auth_level=func.AuthLevel.FUNCTION)
async def tenants_check(req: func.HttpRequest) -> func.HttpResponse:
    """Check a tenant before it goes active: consent, voice group, numbers, a dry run."""
    try:
        path = TenantPath.from_route(req.route_params, "POST /api/tenants/{tenantId}/check")
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        return _json((await (await runtime.get()).check_tenant(path.key)).to_json(), 200)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/numbers", methods=["PUT"],
           auth_level=func.AuthLevel.FUNCTION)
async def tenants_numbers(req: func.HttpRequest) -> func.HttpResponse:
    """Replace a tenant's number ranges with the CSV in the body."""
    try:
        path = TenantPath.from_route(req.route_params, "PUT /api/tenants/{tenantId}/numbers")
        request, text = NumbersImportRequest.from_http(req.params, req.get_body())
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        record = await current.import_numbers(
            path.key, text, "body", by=request.changed_by,
            caller=_actor(req, current.settings.app_service_authentication).caller,
        )
        return _json({"tenant": record_json(record)}, 200)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/{action:regex(^(activate|pause|resume|remove)$)}",
           methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_change(req: func.HttpRequest) -> func.HttpResponse:
    """Activate, pause, resume or remove a tenant (removal unassigns nothing unless
    ``releaseNumbers``: then every number the app assigned is held for approval)."""
    action_name = req.route_params.get("action", "")
    what = f"POST /api/tenants/{{tenantId}}/{action_name}"
    try:
        path = TenantPath.from_route(req.route_params, what)
        request = TenantChangeRequest.from_http(req.params, req.get_body(), what)
        action = TenantAction(action_name)
    except RequestError as error:
        return _refused(error)
    except ValueError:
        return _refused(RequestError("action", f"action={action_name!r}: say activate, pause, "
                                     "resume or remove"))

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        change = await current.change_state(
            path.key, action, by=request.changed_by, release_numbers=request.release_numbers,
            caller=_actor(req, current.settings.app_service_authentication).caller,
        )
        return _json({"tenant": record_json(change.record),
                      "heldForRelease": [hold_json(hold) for hold in change.held]}, 200)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/sync", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_sync(req: func.HttpRequest) -> func.HttpResponse:
    """One tenant's run now (``?dryRun=true``: every decision, nothing written)."""
    try:
        path = TenantPath.from_route(req.route_params, "POST /api/tenants/{tenantId}/sync")
        request = SyncRequest.from_http(req.params, req.get_body())
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        result = await current.sync_tenant(
            path.key, dry_run=request.dry_run,
            actor=_actor(req, current.settings.app_service_authentication))
        return _json(result.to_json(), 200)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/holds", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_holds(req: func.HttpRequest) -> func.HttpResponse:
    """A tenant's held unassignments."""
    try:
        path = TenantPath.from_route(req.route_params, "GET /api/tenants/{tenantId}/holds")
        query = HoldsQuery.from_http(req.params)
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        tenant = await (await runtime.get()).tenant(path.key)
        holds = await tenant.ledger.holds(query.ledger_status)
        return _json({"holds": [hold_json(hold) for hold in holds]}, 200)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/holds/approve", methods=["POST"],
           auth_level=func.AuthLevel.FUNCTION)
async def tenants_approve_holds(req: func.HttpRequest) -> func.HttpResponse:
    """Approve a tenant's held unassignments (all pending, or one run's)."""
    try:
        path = TenantPath.from_route(req.route_params,
                                     "POST /api/tenants/{tenantId}/holds/approve")
        approval = ApprovalRequest.from_http(req.params, _approval_body(req))
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        current = await runtime.get()
        approved = await current.approve_holds(
            approval.approved_by, approval.run_id, tenant_id=path.key,
            caller=_actor(req, current.settings.app_service_authentication).caller,
        )
        if approval.run_id is not None and not approved:
            return _refused(approval.no_pending_holds(
                listing=f"GET /api/tenants/{path.key}/holds?status=all"))
        return _json({"approved": [hold_json(hold) for hold in approved]}, 200)

    return await _answered(run)


@app.route(route="tenants/{tenantId}/audit", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_audit(req: func.HttpRequest) -> func.HttpResponse:
    """A tenant's audit trail: every Teams write, manual trigger, approval and tenant change
    (``?since=2026-11-01`` — default the last 31 days — and ``?user=<id or UPN>``)."""
    try:
        path = TenantPath.from_route(req.route_params, "GET /api/tenants/{tenantId}/audit")
        query = AuditQuery.from_http(req.params)
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        entries = await (await runtime.get()).audit_entries(
            path.key, since=query.since, user=query.user)
        return _json({"entries": [entry.to_json() for entry in entries]}, 200)

    return await _answered(run)


def _approval_body(req: func.HttpRequest) -> bytes:
    """The approval's body; behind App Service Authentication, approvedBy is who signed in."""
    return with_signed_in_approver(req.get_body(), signed_in_principal(req.headers, os.environ))


def _actor(req: func.HttpRequest, app_service_authentication: bool) -> Actor:
    """Who calls, for the audit trail (a bad principal header raises ``RequestError``, which
    ``_answered`` answers naming the header)."""
    return http_actor(req.headers, None, app_service_authentication=app_service_authentication)


# -- the helpdesk report -----------------------------------------------------------------------

@app.route(route="tenants/{tenantId}/report", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
async def tenants_report(req: func.HttpRequest) -> func.HttpResponse:
    """A tenant's helpdesk report: ``?format=html`` (the default: one self-contained page),
    ``csv`` (a download) or ``json``; ``outcome``, ``reason`` and ``search`` choose the users."""
    try:
        path = TenantPath.from_route(req.route_params, "GET /api/tenants/{tenantId}/report")
        query = ReportQuery.from_http(req.params)
    except RequestError as error:
        return _refused(error)

    async def run() -> func.HttpResponse:
        report = await (await runtime.get()).helpdesk_report(path.key, query.filters)
        return _report_answer(render_report(report, query.format))

    return await _answered(run)


def _report_answer(rendered: RenderedReport) -> func.HttpResponse:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if rendered.content_type == "text/html":
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY_HEADER
    if rendered.content_type == "text/csv":
        headers["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
    return func.HttpResponse(rendered.body, status_code=200, mimetype=rendered.content_type,
                             charset="utf-8", headers=headers)


# -- answers -----------------------------------------------------------------------------------

async def _answered(run: Callable[[], Awaitable[func.HttpResponse]]) -> func.HttpResponse:
    """Run a request's work; every failure a person can act on becomes a JSON answer."""
    try:
        return await run()
    except RequestError as error:
        return _refused(error)
    except ConfigError as error:
        return _json({"error": "configuration", "message": str(error)}, 500)
    except UnknownTenantError as error:
        return _json({"error": "tenantId", "message": str(error)}, 404)
    except (TransitionRefused, TenantNotActiveError, TenantExistsError) as error:
        return _json({"error": "state", "message": str(error)}, 409)
    except NumberImportError as error:
        return _json({"error": "body", "message": str(error)}, 400)
    except RegistryError as error:
        return _json({"error": "tenant", "message": str(error)}, 400)
    except TemporaryError as error:
        headers = {"Retry-After": str(int(error.retry_after_seconds or 60))}
        return _json({"error": "temporary", "message": error.message}, 503, headers)
    except PermanentError as error:
        return _json({"error": error.reason.value, "message": error.message}, 502)
    except ValueError as error:
        return _json({"error": "request", "message": str(error)}, 400)


def _refused(error: RequestError) -> func.HttpResponse:
    return _json(error.to_json(), error.status)


def _json(
    body: object, status: int, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype="application/json", headers=headers
    )
