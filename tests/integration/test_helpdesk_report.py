"""The helpdesk report of a tenant synced on Azurite and the Graph simulator, as a person sees it:
the page in headless Chromium (Debian's, driven by Playwright; ``make install`` installs it), the
CSV and JSON over HTTP, and the CLI.

The tenant: ann gets her number; bob's number is not in the Operator Connect inventory (failed,
with what to do); cy has no Teams Phone licence yet (waiting); a user whose principal name is
HTML and whose telephoneNumber is HTML that starts like a number (skipped, invalid format); and
the tenant's display name is an HTML image with an ``onerror`` script.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import azure.functions as func
import pytest
from playwright.async_api import ConsoleMessage, Page, Request, expect
from typer.testing import CliRunner

import function_app
from graph_simulator import Scenario, parse_scenario
from local_runner.browser import headless_chromium
from shared.cli import cli
from shared.core.outcomes import Outcome, Reason
from shared.core.report_page import CONTENT_SECURITY_POLICY_HEADER
from shared.core.tenant_registry import with_changes
from tests.integration.conftest import REPO, LocalApp
from tests.integration.scenario_builder import DOMAIN, build_scenario, user_id

ARTIFACTS = REPO / ".artifacts"
HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">'
HOSTILE_USER = "<svg/onload=window.__pwned=2>"
HOSTILE_NUMBER = '+31 <img src=x onerror="window.__pwned=3">'
ANN, BOB, CY = (f"{name}@{DOMAIN}" for name in ("ann", "bob", "cy"))
HOSTILE_UPN = f"{HOSTILE_USER}@{DOMAIN}"


@pytest.fixture
def scenario() -> Scenario:
    data = build_scenario([
        ("ann", ["+31855363011"]), ("bob", ["+31855363012"]), ("cy", ["+31855363013"]),
        (HOSTILE_USER, [HOSTILE_NUMBER]),
    ]).model_dump(by_alias=True)
    for user in data["users"]:
        if user["id"] == user_id("cy"):
            user["teams"] = {**user["teams"], "licensed": False}
    # Operator Connect: only the numbers in the inventory can be assigned; bob's is not there.
    data["numberAssignments"] = [
        {"telephoneNumber": number, "numberType": "operatorConnect"}
        for number in ("+31855363011", "+31855363013")
    ]
    return parse_scenario(data)


@pytest.fixture
async def synced(local_app: LocalApp, monkeypatch: pytest.MonkeyPatch) -> LocalApp:
    """The tenant synced once, with the hostile display name in its registry record."""
    monkeypatch.setenv("NUMBER_TYPE", "operatorConnect")
    await local_app.sync()
    statuses = await local_app.statuses()
    assert {upn: (s.outcome, s.reason) for upn, s in statuses.items()} == {
        ANN: (Outcome.ASSIGNED, Reason.ASSIGNED),
        BOB: (Outcome.FAILED, Reason.NOT_IN_INVENTORY),
        CY: (Outcome.SKIPPED, Reason.NOT_LICENSED),
        HOSTILE_UPN: (Outcome.SKIPPED, Reason.INVALID_FORMAT),
    }
    runtime = await local_app.runtime()
    now = runtime.clock()
    await runtime.change(local_app.scenario.tenant.id, lambda record: with_changes(
        record, by="test", at=now, display_name=HOSTILE_NAME))
    return local_app


def _get(tenant: str, **params: str) -> func.HttpRequest:
    return func.HttpRequest("GET", f"/api/tenants/{tenant}/report", body=b"",
                            params=params, route_params={"tenantId": tenant})


async def _users(page: Page) -> list[str]:
    return await page.locator("tr.user-row:visible td.user").all_inner_texts()


async def test_a_helpdesk_reads_the_report_in_a_browser(synced: LocalApp) -> None:
    tenant = synced.scenario.tenant.id
    response = await function_app.tenants_report(_get(tenant, format="html"))
    assert (response.status_code, response.mimetype, response.charset) == (
        200, "text/html", "utf-8")
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY_HEADER
    ARTIFACTS.mkdir(exist_ok=True)
    page_file = ARTIFACTS / "helpdesk-report.html"
    await asyncio.to_thread(page_file.write_bytes, response.get_body())

    requests: list[str] = []
    problems: list[str] = []
    async with headless_chromium(width=1280, height=900) as browser:
        browser.on("request", lambda request: _note(requests, request))
        page = await browser.new_page()
        page.on("console", lambda message: _problem(problems, message))
        page.on("pageerror", lambda error: problems.append(str(error)))
        await page.goto(page_file.as_uri())

        # The hostile display name is shown as text, and nothing in the page ran.
        await expect(page.locator("#tenant-name")).to_have_text(HOSTILE_NAME)
        await expect(page).to_have_title(f"Teams numbers: {HOSTILE_NAME} — helpdesk report")
        await expect(page.locator("td.user", has_text=HOSTILE_USER)).to_be_visible()
        await expect(page.get_by_role("cell", name=HOSTILE_NUMBER, exact=True)).to_be_visible()
        assert await page.evaluate("typeof window.__pwned") == "undefined"
        assert await page.locator("img, svg").count() == 0

        # The summary, then failed first, then waiting, then the rest; the failed user's
        # instructions are on screen.
        await expect(page.locator("#attention-card")).to_contain_text("1 failed · 1 waiting")
        await expect(page.locator("#shown")).to_have_text("4 of 4 users shown")
        assert await _users(page) == [BOB, CY, HOSTILE_UPN, ANN]
        bob = page.locator("tr.user-row", has_text=BOB)
        await expect(bob.locator("td.todo")).to_be_visible()
        await expect(bob.locator("td.todo")).to_contain_text("inventory")
        await page.screenshot(path=str(ARTIFACTS / "helpdesk-report.png"), full_page=True)

        # Sorting by a column changes the order; again, the other way round.
        user_header = page.get_by_role("button", name="User")
        await user_header.click()
        await expect(page.locator("th", has=user_header)).to_have_attribute(
            "aria-sort", "ascending")
        assert await _users(page) == sorted([ANN, BOB, CY, HOSTILE_UPN], key=str.casefold)
        await user_header.click()
        assert await _users(page) == sorted([ANN, BOB, CY, HOSTILE_UPN], key=str.casefold,
                                            reverse=True)

        # A search hides every other row; so does the outcome filter.
        await page.get_by_label("Search user, number or text").fill("855363011")
        await expect(page.locator("#shown")).to_have_text("1 of 4 users shown")
        assert await _users(page) == [ANN]
        await expect(page.locator("tr.user-row", has_text=BOB)).to_be_hidden()
        await page.get_by_label("Search user, number or text").fill("")
        await page.get_by_label("Outcome").select_option("failed")
        await expect(page.locator("#shown")).to_have_text("1 of 4 users shown")
        assert await _users(page) == [BOB]
        await page.get_by_label("Outcome").select_option("")
        await page.get_by_label("failed and waiting only").check()
        await expect(page.locator("#shown")).to_have_text("2 of 4 users shown")
        assert set(await _users(page)) == {BOB, CY}

        # Printed: no controls, the rows shown, and which filter chose them.
        await page.emulate_media(media="print")
        await expect(page.locator(".controls")).to_be_hidden()
        await expect(page.locator("#print-filters")).to_have_text(
            "Shown: failed and waiting only (2 of 4 users shown).")
        assert set(await _users(page)) == {BOB, CY}

    # The page loaded nothing but itself, and its policy refused nothing of its own.
    assert requests == [page_file.as_uri()]
    assert problems == []


def _note(requests: list[str], request: Request) -> None:
    requests.append(request.url)


def _problem(problems: list[str], message: ConsoleMessage) -> None:
    if message.type in {"error", "warning"}:
        problems.append(message.text)


async def test_the_report_over_http_as_csv_and_json_and_from_the_cli(
    synced: LocalApp, tmp_path: Path
) -> None:
    tenant = synced.scenario.tenant.id

    downloaded = await function_app.tenants_report(_get(tenant, format="csv"))
    assert (downloaded.status_code, downloaded.mimetype) == (200, "text/csv")
    assert downloaded.headers["Content-Disposition"] == (
        f'attachment; filename="report-{tenant}.csv"')
    lines = list(csv.reader(io.StringIO(downloaded.get_body().decode())))
    assert [line[0] for line in lines] == ["user", BOB, CY, HOSTILE_UPN, ANN]
    assert lines[4][2] == "+31855363011"  # a number reads back as it is
    assert lines[3][2] == "'" + HOSTILE_NUMBER  # a value that is not one is text

    failed = await function_app.tenants_report(_get(tenant, format="json", outcome="failed"))
    body = json.loads(failed.get_body())
    assert (failed.mimetype, body["displayName"]) == ("application/json", HOSTILE_NAME)
    assert [user["userPrincipalName"] for user in body["users"]] == [BOB]
    assert body["summary"]["byOutcome"] == {"assigned": 1, "kept": 0, "skipped": 2,
                                            "unassigned": 0, "held": 0, "failed": 1}
    assert body["summary"]["lastRun"]["outcome"] == "completed"

    refused = await function_app.tenants_report(_get(tenant, outcome="broken"))
    assert (refused.status_code, json.loads(refused.get_body())["error"]) == (400, "outcome")
    unknown = "5d7a1b7e-3f0e-4d55-9d41-000000000000"
    missing = await function_app.tenants_report(_get(unknown))
    assert (missing.status_code, json.loads(missing.get_body())["error"]) == (404, "tenantId")

    out = tmp_path / "report.html"
    written = await asyncio.to_thread(CliRunner().invoke, cli, [
        "report", tenant, "--format", "html", "-o", str(out), "--search", "cy@"])
    assert written.exit_code == 0, written.output
    assert f"the html report of tenant {tenant} (1 of 4 users)" in written.stdout
    assert CY in out.read_text(encoding="utf-8")
    printed = await asyncio.to_thread(CliRunner().invoke, cli, [
        "report", tenant, "--json", "--reason", "not_licensed"])
    assert printed.exit_code == 0, printed.output
    assert [user["userPrincipalName"] for user in json.loads(printed.stdout)["users"]] == [CY]
    nobody = await asyncio.to_thread(CliRunner().invoke, cli, ["report", unknown])
    assert nobody.exit_code == 2
    assert "not in the registry" in nobody.stderr
