"""checkov's Bicep checks over infra/: no file it cannot parse, and no failed check that is not
in infra/checkov-skips.toml with a reason; the broken fixtures fail it.

checkov runs once for the module (about 10 s), over a staged copy of infra/ and the fixtures.
It lives in its own venv (.venv-checkov, ``make checkov-venv``, a dependency of ``make test``),
so these tests are marked ``integration``: ``make test-fast`` runs without that venv.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.bicep_checks import (
    FIXTURES,
    INFRA,
    CheckovReport,
    checkov_report,
    checkov_skips,
    stage,
    stale_skips,
    unlisted_failures,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> CheckovReport:
    """One checkov run over infra/ and the fixtures."""
    staged: Path = tmp_path_factory.mktemp("checkov")
    stage({"infra": INFRA, "fixtures": FIXTURES}, staged)
    return checkov_report(staged)


def test_checkov_parses_every_template(report: CheckovReport) -> None:
    assert [path for path in report.parsing_errors if path.startswith("infra/")] == []
    assert report.resource_count > 0


def test_checkov_names_a_template_it_cannot_parse(report: CheckovReport) -> None:
    # checkov skips such a file with exit code 0: the check must see it anyway.
    assert [path for path in report.parsing_errors if path.startswith("fixtures/")] == [
        "fixtures/syntax-error.bicep"]


def test_every_failed_check_is_listed_with_a_reason(report: CheckovReport) -> None:
    infra = [failure for failure in report.failures if failure.file.startswith("infra/")]
    assert unlisted_failures(infra, checkov_skips()) == []


def test_no_listed_skip_is_stale(report: CheckovReport) -> None:
    infra = [failure for failure in report.failures if failure.file.startswith("infra/")]
    assert stale_skips(infra, checkov_skips()) == []


def test_the_insecure_fixture_fails_checks_nobody_listed(report: CheckovReport) -> None:
    fixture = [failure for failure in report.failures
               if failure.file == "fixtures/insecure.bicep"]
    failed = {failure.check_id for failure in unlisted_failures(fixture, checkov_skips())}
    # TLS 1.0, HTTP allowed, open network rules on the bare storage account.
    assert {"CKV_AZURE_44", "CKV_AZURE_3", "CKV_AZURE_35"} <= failed


def test_a_skip_without_a_reason_is_refused(tmp_path: Path) -> None:
    skips = tmp_path / "skips.toml"
    skips.write_text('[[skip]]\nid = "CKV_AZURE_13"\nfile = "infra/app/x.bicep"\n'
                     'resource = "Microsoft.Web/sites.x"\nreason = " "\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"skips.toml skip #1 \('CKV_AZURE_13'\): reason missing"):
        checkov_skips(skips)
