"""README "Deploy" lists exactly the permissions the code needs (shared/core/tenant_checks.py),
as the app registration template does (tests/infra/test_templates.py checks that one).

The format the test reads: a level-2 heading ``## Deploy``; inside it the heading
``### Permissions of the app registration``, then one bullet per permission,
``- `Permission.Name` — what for``; the optional one's bullet says "main-number policies".
"""

from __future__ import annotations

import re

from tests.infra.app_requirements import optional_permissions, required_permissions
from tests.infra.bicep_checks import REPO

README = REPO / "README.md"
DEPLOY_HEADING = "## Deploy"
PERMISSIONS_HEADING = "### Permissions of the app registration"
_PERMISSION = re.compile(r"`([A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z]*)+\.All)`")


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level.

    Raises:
        AssertionError: the heading is not there.
    """
    level = heading.split(" ", 1)[0]
    lines = text.splitlines()
    if heading not in lines:
        raise AssertionError(f"README.md has no {heading!r} heading")
    start = lines.index(heading) + 1
    end = next((index for index in range(start, len(lines))
                if re.match(rf"^#{{1,{len(level)}}} ", lines[index])), len(lines))
    return "\n".join(lines[start:end])


def listed_permissions(deploy: str) -> tuple[list[str], list[str]]:
    """The bullets of the permissions subsection: (every tenant's, the optional ones)."""
    required: list[str] = []
    optional: list[str] = []
    for line in section(deploy, PERMISSIONS_HEADING).splitlines():
        bullet = re.match(rf"^- {_PERMISSION.pattern}", line)
        if bullet:
            (optional if "main-number policies" in line else required).append(bullet.group(1))
    return required, optional


def test_readme_deploy_lists_exactly_the_codes_permissions() -> None:
    deploy = section(README.read_text(encoding="utf-8"), DEPLOY_HEADING)
    required, optional = listed_permissions(deploy)
    assert sorted(required) == sorted(required_permissions())
    assert sorted(optional) == sorted(optional_permissions())


def test_readme_deploy_names_no_other_permission() -> None:
    # The az commands too: a permission dropped from the code must leave the README.
    deploy = section(README.read_text(encoding="utf-8"), DEPLOY_HEADING)
    named = set(_PERMISSION.findall(deploy)) | set(re.findall(
        r"\b([A-Z][A-Za-z]*(?:\.[A-Z][A-Za-z]*)+\.All)\b", deploy))
    assert named - set(required_permissions()) - set(optional_permissions()) == set()


def test_the_section_reader_finds_the_bullets() -> None:
    deploy = section("\n".join([
        "## Deploy", "intro", PERMISSIONS_HEADING,
        "- `User.Read.All` — read users",
        "- `Extra.ReadWrite.All` — only with main-number policies",
        "- not a permission", "### Next", "- `Other.Read.All` — elsewhere", "## Layout",
    ]), DEPLOY_HEADING)
    assert listed_permissions(deploy) == (["User.Read.All"], ["Extra.ReadWrite.All"])
