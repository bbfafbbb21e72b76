"""The operator commands' shared conventions, through typer's CliRunner on a runtime of fakes:
exit codes (0 ok, 1 findings, 2 bad input), ``--json`` that parses, ``export`` / ``restore``,
and progress only on a terminal."""

from __future__ import annotations

import asyncio
import io
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from typer.testing import CliRunner, Result

from shared import cli as cli_module
from shared.cli import cli
from shared.cli_conventions import ExitCode, command_progress, progress_wanted
from shared.core.directory import Claim
from shared.core.errors import TemporaryError
from shared.core.outcomes import Outcome, Reason
from shared.core.records import Hold, RunRecord, UserStatus
from shared.core.tenant_checks import CheckFinding, CheckLevel
from shared.core.tenant_export import TenantExport, read_export
from shared.core.tenant_restore import RestorePlan
from shared.runtime import UnknownTenantError
from shared.service.context import TenantContext
from shared.service.progress import NO_PROGRESS, WorkProgress
from shared.service.tenant_export import export_tenant, restore_tenant
from shared.service.tenant_runs import TenantCheck
from tests.fakes import NOW, TENANT, FakeTeamsNumbers, fake_context

KEY = TENANT.key
ANN, BOB = "ann", "bob"
ANN_N, BOB_N = "+31855363011", "+31855363012"


@dataclass
class FakeTenant:
    """What the commands use of a ``TenantRuntime``."""

    context: TenantContext

    @property
    def ledger(self) -> Any:
        return self.context.ports.ledger


@dataclass
class FakeRuntime:
    """What the commands use of ``AppRuntime``, on one tenant of fakes."""

    teams: FakeTeamsNumbers = field(default_factory=FakeTeamsNumbers)
    context: TenantContext = field(init=False)
    check: TenantCheck = field(default_factory=lambda: TenantCheck(KEY, ()))

    def __post_init__(self) -> None:
        self.context = fake_context(teams=self.teams)

    @property
    def ledger(self) -> Any:
        return self.context.ports.ledger

    async def tenant(self, tenant_id: str) -> FakeTenant:
        if tenant_id != KEY:
            raise UnknownTenantError(tenant_id)
        return FakeTenant(self.context)

    async def overview(self) -> list[object]:
        return []

    async def approve_holds(self, approved_by: str, run_id: str | None = None,
                            *, tenant_id: str | None = None, caller: str = "unknown"
                            ) -> list[Hold]:
        return []

    async def check_tenant(self, tenant_id: str, *, progress: WorkProgress = NO_PROGRESS
                           ) -> TenantCheck:
        return self.check

    async def export_tenant(self, tenant_id: str, *, progress: WorkProgress = NO_PROGRESS
                            ) -> TenantExport:
        return await export_tenant((await self.tenant(tenant_id)).context, progress=progress)

    async def restore_tenant(self, tenant_id: str, document: TenantExport, *, source: str,
                             dry_run: bool = False, progress: WorkProgress = NO_PROGRESS,
                             ) -> RestorePlan:
        return await restore_tenant((await self.tenant(tenant_id)).context, document,
                                    source=source, dry_run=dry_run, progress=progress)


class FakeHolder:
    def __init__(self, runtime: FakeRuntime) -> None:
        self.runtime = runtime

    async def get(self) -> FakeRuntime:
        return self.runtime

    async def close(self) -> None:
        return None


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    built = FakeRuntime(teams=FakeTeamsNumbers({ANN_N: ANN, BOB_N: BOB}))
    monkeypatch.setattr(cli_module, "RuntimeHolder", lambda environ: FakeHolder(built))
    return built


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def parsed(result: Result, code: ExitCode = ExitCode.OK) -> Any:
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


async def seed(runtime: FakeRuntime) -> None:
    ports = runtime.context.ports
    for number, user in ((ANN_N, ANN), (BOB_N, BOB)):
        await ports.claims.claim(Claim(number, user, f"{user}@contoso.example", "run-1", 0,
                                       assigned=True))
        await ports.statuses.record(UserStatus(
            user, f"{user}@contoso.example", Outcome.ASSIGNED, Reason.ASSIGNED, number,
            "assigned", "run-1", 0, NOW))
    await ports.ledger.save_holds([Hold("run-2", ANN, "ann@contoso.example", ANN_N,
                                        "mass_unassign_guard", "held", "pending", NOW)])
    await ports.ledger.record_run(RunRecord("run-1", NOW, NOW, "completed", "", {"kept": 2}))


def lose_everything(runtime: FakeRuntime) -> None:
    """The storage account is gone: a fresh tenant of empty fakes, Teams as it was."""
    runtime.context = fake_context(teams=runtime.teams)


# -- --json on every listing ----------------------------------------------------------------


def test_every_listing_prints_json_that_parses(runtime: FakeRuntime) -> None:
    asyncio.run(seed(runtime))

    holds = parsed(run("holds", "list", "--json"))
    runs = parsed(run("runs", "--json"))
    tenants = parsed(run("tenants", "list", "--json"))
    check = parsed(run("tenants", "check", KEY, "--json"))

    assert [(h["userId"], h["status"]) for h in holds["holds"]] == [(ANN, "pending")]
    assert [r["runId"] for r in runs["runs"]] == ["run-1"]
    assert tenants == {"tenants": []}
    assert check["passed"] is True


def test_holds_list_is_a_table_without_json(runtime: FakeRuntime) -> None:
    asyncio.run(seed(runtime))

    result = run("holds", "list", "--tenant", KEY)

    assert result.exit_code == 0, result.output
    assert "1 hold(s)" in result.stdout
    assert "ann@contoso.example" in result.stdout
    assert "approve with: holds approve" in result.stdout


# -- exit codes -------------------------------------------------------------------------------


def test_a_failed_check_is_a_finding_exit_code_1(runtime: FakeRuntime) -> None:
    runtime.check = TenantCheck(KEY, (CheckFinding("token", CheckLevel.FAILED, "no consent"),))

    body = parsed(run("tenants", "check", KEY, "--json"), ExitCode.FINDINGS)

    assert body["passed"] is False


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["export", "not-a-guid"], 'tenantId="not-a-guid": Input should be a valid UUID'),
        (["export", "7e1b2c3d-0000-4000-8000-00000000ffff"], "is not in the registry"),
        (["holds", "approve", "--by", "ops", "--run", "run-9"],
         "--run=\"run-9\": no pending holds of this run"),
        (["restore", KEY, "/nonexistent/export.json"], "/nonexistent/export.json: No such file"),
    ],
)
def test_bad_input_is_one_line_naming_it_and_exit_code_2(
    runtime: FakeRuntime, args: list[str], says: str
) -> None:
    result = run(*args)

    assert result.exit_code == ExitCode.BAD_INPUT, result.output
    assert result.stderr.startswith("error: ")
    assert says in result.stderr
    assert result.stdout == ""


def test_a_failing_service_is_one_line_and_exit_code_1(
    runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def unreachable() -> list[object]:
        raise ServiceRequestError("Connection refused\nat 127.0.0.1:10002")

    async def throttled() -> dict[str, str]:
        raise TemporaryError("Graph throttled numberAssignments (429)")

    monkeypatch.setattr(runtime, "overview", unreachable)
    listed = run("tenants", "list", "--json")
    assert listed.exit_code == ExitCode.FINDINGS
    assert listed.stderr == ("error: Azure Storage failed: Connection refused (the storage "
                             "account of AzureWebJobsStorage)\n")
    assert listed.stdout == ""

    out = tmp_path / "contoso.json"
    assert run("export", KEY, "-o", str(out)).exit_code == 0
    monkeypatch.setattr(runtime.teams, "list_assignments", throttled)
    restored = run("restore", KEY, str(out))
    assert restored.exit_code == ExitCode.FINDINGS
    assert restored.stderr.startswith("error: Teams could not be read, nothing was restored: "
                                      "Graph throttled")


# -- export and restore -----------------------------------------------------------------------


def test_export_prints_the_document_or_writes_it_and_the_csv(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    asyncio.run(seed(runtime))

    printed = run("export", KEY)
    assert printed.exit_code == 0, printed.output
    document = read_export(printed.stdout)
    assert document.counts.to_json() == {"claims": 2, "statuses": 2, "grants": 0, "holds": 1}

    out, statuses = tmp_path / "contoso.json", tmp_path / "statuses.csv"
    summary = parsed(run("export", KEY, "-o", str(out), "--statuses-csv", str(statuses),
                         "--json"))
    assert summary["file"] == str(out)
    assert summary["counts"] == document.counts.to_json()
    assert read_export(out.read_text(encoding="utf-8")).claims == document.claims
    assert statuses.read_text(encoding="utf-8").splitlines()[0].startswith(
        "userId,userPrincipalName,outcome,reason,number")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it names every user and number

    told = run("export", KEY, "-o", str(out))
    assert told.exit_code == 0
    assert "2 claims, 2 statuses, 0 policy grants, 1 holds" in told.stdout


def test_restore_after_a_loss_rebuilds_and_exit_code_0(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    asyncio.run(seed(runtime))
    out = tmp_path / "contoso.json"
    assert run("export", KEY, "-o", str(out)).exit_code == 0
    lose_everything(runtime)

    preview = parsed(run("restore", KEY, str(out), "--dry-run", "--json"))
    assert preview["dryRun"] is True
    assert asyncio.run(runtime.context.ports.claims.list_claims()) == {}

    summary = parsed(run("restore", KEY, str(out), "--json"))

    assert summary["restored"] == {"claims": 2, "grants": 0, "holds": 1}
    assert summary["reported"] == []
    assert summary["notRestored"] == {"statuses": 2}
    assert set(asyncio.run(runtime.context.ports.claims.list_claims())) == {ANN_N, BOB_N}
    again = run("restore", KEY, str(out))  # the same rows again: nothing new, no refusal
    assert again.exit_code == 0, again.output
    assert "restored 2 claims, 0 policy grants, 1 holds; 0 reported" in again.stdout


def test_a_claim_teams_shows_elsewhere_is_reported_exit_code_1(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    asyncio.run(seed(runtime))
    out = tmp_path / "contoso.json"
    assert run("export", KEY, "-o", str(out)).exit_code == 0
    lose_everything(runtime)
    runtime.teams.assignments[BOB_N] = "cara"  # moved in Teams by hand meanwhile

    table = run("restore", KEY, str(out), "--dry-run")
    assert table.exit_code == ExitCode.FINDINGS, table.output
    assert "1 row(s) reported, not restored" in table.stdout
    assert "assigned_elsewhere" in table.stdout
    summary = parsed(run("restore", KEY, str(out), "--json"), ExitCode.FINDINGS)

    assert [(r["number"], r["reason"]) for r in summary["reported"]] == [
        (BOB_N, "assigned_elsewhere")]
    assert set(asyncio.run(runtime.context.ports.claims.list_claims())) == {ANN_N}


def test_restore_refuses_a_store_in_use_and_bad_files_with_exit_code_2(
    runtime: FakeRuntime, tmp_path: Path
) -> None:
    asyncio.run(seed(runtime))
    out = tmp_path / "contoso.json"
    assert run("export", KEY, "-o", str(out)).exit_code == 0
    body = json.loads(out.read_text(encoding="utf-8"))
    asyncio.run(runtime.context.ports.claims.claim(Claim("+31855363019", "zoe", "", "", 0)))

    def refused(text: str) -> str:
        path = tmp_path / "bad.json"
        path.write_text(text, encoding="utf-8")
        result = run("restore", KEY, str(path))
        assert result.exit_code == ExitCode.BAD_INPUT, result.output
        assert result.stdout == ""
        return result.stderr

    in_use = run("restore", KEY, str(out))
    assert in_use.exit_code == ExitCode.BAD_INPUT
    assert "has 1 claim (+31855363019) stored that this export does not restore" in (
        in_use.stderr)
    assert "not JSON" in refused(out.read_text(encoding="utf-8")[:-20])
    assert "schema='teams-number-sync-export/0'" in refused(
        json.dumps({**body, "schema": "teams-number-sync-export/0"}))
    assert "tenantId='another': this is another tenant's export" in refused(
        json.dumps({**body, "tenantId": "another"}))


# -- progress ---------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_only_on_a_terminal_and_never_with_json() -> None:
    assert progress_wanted(False, Terminal())
    assert not progress_wanted(True, Terminal())
    assert not progress_wanted(False, io.StringIO())
    quiet = io.StringIO()
    with command_progress(False, quiet) as progress:
        progress.stage("reading", total=2)
        progress.advance(2)
    assert quiet.getvalue() == ""

    terminal = Terminal()
    with command_progress(False, terminal) as progress:
        progress.stage("reading claims", total=2)
        progress.advance(2)
        progress.stage("waiting for Teams")

    assert "reading claims" in terminal.getvalue()
    assert "2/2" in terminal.getvalue()
