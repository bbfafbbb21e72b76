"""The `/_simulator/` control routes: no auth, never counted as Graph requests.

`GET /_simulator/requests` (counts and log), `POST /_simulator/requests/clear`,
`GET /_simulator/state` (numbers and Teams users as Graph shows them), `POST /_simulator/scenario`
(whole world), `POST /_simulator/directory` (users and groups only), `POST /_simulator/faults`
(`Fault`), `POST /_simulator/faults/latency` (`LatencyFault`), `POST /_simulator/faults/operation`
(`OperationFailure`), `POST /_simulator/delta/expire` (every delta token answers as expired
from then on: 410, or `deltaGoneStatus`), `POST /_simulator/permissions`
(`{"grantedPermissions": [...] | null}`: the tenant's grants from now on),
`POST /_simulator/behaviour` (a partial `Behaviour` in camelCase: the fields given change, the
rest stay), `POST /_simulator/consent` (`{"consented": bool}`: the tenant's admin consent to the
app), `GET /_simulator/tenants` (the tenants served) and `GET /_simulator/identity/requests`
(requests to the token endpoint and IMDS stand-ins). A body that does not validate answers 400
`InvalidRequest`.

Every route about one tenant takes `?tenant=<id>` (absent: the first tenant, as when the
simulator served one); an unknown tenant answers 400. `POST /_simulator/scenario` without it
replaces every tenant (the scenario's tenants are served from then on), with it only that one.
The request routes also take `?tenant=*`: every tenant's requests.
"""

from __future__ import annotations

from typing import Final, TypeVar

from aiohttp import web
from pydantic import ValidationError

from graph_simulator.scenario import (
    Behaviour,
    Fault,
    GrantedPermissions,
    LatencyFault,
    OperationFailure,
    ScenarioError,
    TenantConsent,
    describe_validation_error,
    parse_directory,
    parse_scenario,
)
from graph_simulator.server import Simulator

#: Paths under this prefix are control routes, not Graph requests.
CONTROL_PREFIX: Final = "/_simulator/"

_CONTROL_ROUTES: Final = {
    "requests": "GET", "requests/clear": "POST", "state": "GET", "scenario": "POST",
    "directory": "POST", "faults": "POST", "faults/latency": "POST",
    "faults/operation": "POST", "delta/expire": "POST", "permissions": "POST",
    "behaviour": "POST", "consent": "POST", "tenants": "GET", "identity/requests": "GET",
}


async def answer_control(request: web.Request, simulator: Simulator, path: str) -> web.Response:
    """Answer a request to the control route at `path` (which starts with `CONTROL_PREFIX`)."""
    name = path.removeprefix(CONTROL_PREFIX)
    if name not in _CONTROL_ROUTES:
        return _control_error(404, "NotFound", f"No simulator control route {path}")
    if request.method != _CONTROL_ROUTES[name]:
        return _control_error(405, "MethodNotAllowed", f"{request.method} {path}")
    body = await request.read()
    tenant = request.query.get("tenant")
    try:
        if name == "requests":
            return web.json_response({"counts": simulator.request_counts(tenant),
                                      "log": simulator.request_log(tenant)})
        if name == "identity/requests":
            return web.json_response({"log": simulator.identity_requests(tenant)})
        if name == "tenants":
            return web.json_response({"tenants": simulator.tenants()})
        if name == "state":
            return web.json_response({
                "numberAssignments": simulator.number_assignment_resources(tenant),
                "userConfigurations": simulator.user_configuration_resources(tenant),
            })
        if name == "behaviour":  # answers the behaviour now in force
            changed = simulator.update_behaviour(
                _parse_control_body(Behaviour, body, "behaviour"), tenant)
            return web.json_response(changed.model_dump(by_alias=True, mode="json"))
        _control_action(simulator, name, body, tenant)
    except ScenarioError as error:
        return _control_error(400, "InvalidRequest", str(error))
    return web.json_response({"ok": True})


def _control_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _control_action(simulator: Simulator, name: str, body: bytes, tenant: str | None) -> None:
    if name == "requests/clear":
        simulator.clear_requests(tenant)
    elif name == "scenario":
        simulator.load_scenario(parse_scenario(body, "scenario"), tenant)
    elif name == "directory":
        simulator.replace_directory(parse_directory(body, "directory"), tenant)
    elif name == "faults":
        simulator.inject_fault(_parse_control_body(Fault, body, "fault"), tenant)
    elif name == "faults/latency":
        simulator.inject_latency(_parse_control_body(LatencyFault, body, "latency"), tenant)
    elif name == "faults/operation":
        simulator.inject_operation_failure(
            _parse_control_body(OperationFailure, body, "operationFailure"), tenant)
    elif name == "permissions":
        simulator.grant_permissions(
            _parse_control_body(GrantedPermissions, body, "permissions").granted_permissions,
            tenant)
    elif name == "consent":
        simulator.set_consent(_parse_control_body(TenantConsent, body, "consent").consented,
                              tenant)
    else:
        simulator.expire_delta_tokens(tenant)


_ControlModel = TypeVar("_ControlModel", Fault, LatencyFault, OperationFailure, Behaviour,
                        GrantedPermissions, TenantConsent)


def _parse_control_body(model: type[_ControlModel], body: bytes, source: str) -> _ControlModel:
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        raise ScenarioError(describe_validation_error(error, source)) from None
