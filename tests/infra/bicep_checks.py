"""Offline checks of the Bicep templates under ``infra/`` (no Bicep compiler is reachable here):
reading them, evaluating their expressions, and running checkov.

Three checks:

* **syntax** (``syntax_errors``): tree-sitter-bicep parses every ``.bicep`` file with no error
  or missing node;
* **structure**: pycep-parser's dict of a template (``parse``), with its expressions evaluated
  as far as they can be offline (``evaluate``); what the app needs of it is in
  ``tests/infra/app_requirements.py``;
* **checkov** (``checkov_report``): its Bicep checks, run from its own venv with
  ``--skip-download``; every failed check must be listed in ``infra/checkov-skips.toml``.

Both parsers misread one line of ours: the Microsoft Graph extension's ``extension`` line
(tree-sitter-bicep 1.1.0 reports an error, checkov's older pycep cannot parse the file). It is
blanked, keeping the line numbers, before any parser sees a file (``bicep_text``).
"""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pycep
import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
CHECKOV_SKIPS = INFRA / "checkov-skips.toml"

#: What Azure fills in at deployment (ids, endpoints, module outputs), in a form every app
#: setting that takes text or an https URL accepts.
UNRESOLVED = "https://set-at-deployment.invalid/"

_EXTENSION_LINE = re.compile(r"(?m)^extension[ \t]+\S+[ \t]*$")
_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARSER = Parser(Language(tree_sitter_bicep.language()))

Template = dict[str, Any]
"""pycep-parser's dict of one file: globals, parameters, variables, resources, modules, outputs."""


# -- reading ---------------------------------------------------------------------------------

def bicep_files(root: Path = INFRA) -> list[Path]:
    """Every ``.bicep`` file under ``root``."""
    return sorted(root.rglob("*.bicep"))


def bicep_text(path: Path) -> str:
    """The file's text with an ``extension`` line blanked (same line numbers)."""
    return _EXTENSION_LINE.sub("", path.read_text(encoding="utf-8"))


def syntax_errors(path: Path) -> list[str]:
    """tree-sitter-bicep's error and missing nodes in ``path``, as ``file:line:column: what``."""
    tree = _PARSER.parse(bicep_text(path).encode("utf-8"))
    return [
        f"{path.name}:{node.start_point[0] + 1}:{node.start_point[1] + 1}: "
        f"{'missing ' + node.type if node.is_missing else 'cannot parse this'}"
        for node in _walk(tree.root_node)
        if node.is_error or node.is_missing
    ]


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def parse(path: Path) -> Template:
    """pycep-parser's dict of ``path``.

    Raises:
        BicepParseError: naming the file and what pycep could not read.
    """
    try:
        return dict(pycep.BicepParser().parse(text=bicep_text(path)))
    except Exception as error:  # lark's errors have no common base worth naming here
        raise BicepParseError(f"{path.relative_to(REPO)}: {error}") from error


class BicepParseError(Exception):
    """pycep-parser could not read a template."""


# -- evaluating expressions ------------------------------------------------------------------

@dataclass
class Scope:
    """The names one template's expressions see: its parameters' values and its variables."""

    template: Template
    values: Mapping[str, Any]

    @classmethod
    def of(cls, template: Template, given: Mapping[str, Any]) -> Scope:
        """Parameters take ``given`` values, else their defaults (a parameter with neither is
        an error: the deployment could not start either)."""
        values: dict[str, Any] = {}
        for name, parameter in template.get("parameters", {}).items():
            if name in given:
                values[name] = given[name]
            elif parameter.get("default") is not None:  # pycep: None when there is none
                values[name] = parameter["default"]
            else:
                raise KeyError(f"parameter {name!r} has no default and no value was given")
        return cls(template, values)

    def lookup(self, name: str) -> tuple[bool, Any]:
        """(True, value) when ``name`` is a parameter or variable of the template."""
        if name in self.values:
            return True, self.values[name]
        variables = self.template.get("variables", {})
        if name in variables:
            return True, evaluate(variables[name]["value"], self)
        return False, None


def evaluate(expression: Any, scope: Scope) -> Any:
    """The value of a pycep expression, as far as it is known offline.

    Known: literals, parameters, variables, string interpolation, ``union`` and ``concat``,
    ``==``/``!=``/``!`` and the conditional. Everything Azure fills in (resource properties,
    module outputs, other functions) is ``UNRESOLVED``. pycep writes an identifier and a string
    literal alike, so a string that names a parameter or variable is read as that name.
    """
    if isinstance(expression, str):
        return _evaluate_text(expression, scope)
    if isinstance(expression, list):
        return [evaluate(item, scope) for item in expression]
    if not isinstance(expression, dict):
        return expression  # int, bool, None
    if set(expression) == {"operator"}:
        return _evaluate_operator(expression["operator"], scope)
    if set(expression) == {"function"}:
        return _evaluate_function(expression["function"], scope)
    return {key: evaluate(value, scope) for key, value in expression.items()}


def _evaluate_text(text: str, scope: Scope) -> Any:
    if _IDENTIFIER.match(text):
        known, value = scope.lookup(text)
        if known:
            return value

    def substitute(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        known, value = scope.lookup(inner) if _IDENTIFIER.match(inner) else (False, None)
        return str(value) if known and not isinstance(value, dict | list) else UNRESOLVED

    return _INTERPOLATION.sub(substitute, text)


def _evaluate_operator(operator: Mapping[str, Any], scope: Scope) -> Any:
    kind, operands = operator["type"], operator["operands"]
    if kind == "conditional":
        condition = evaluate(operands["condition"], scope)
        return evaluate(operands["true_value" if condition is True else "false_value"], scope)
    if kind in {"equals", "not_equals"}:
        same = evaluate(operands["operand_1"], scope) == evaluate(operands["operand_2"], scope)
        return same if kind == "equals" else not same
    if kind == "not":
        return not evaluate(operands["bool_value"], scope)
    if kind == "property_accessor":
        return _evaluate_property(operands, scope)
    return UNRESOLVED


def _evaluate_property(operands: Mapping[str, Any], scope: Scope) -> Any:
    # a.b.c arrives as accessor(a, accessor(b, c)): walk it while the values are known objects.
    value = evaluate(operands["operand_1"], scope)
    rest = operands["operand_2"]
    while isinstance(value, dict):
        if isinstance(rest, str):
            return value.get(rest, UNRESOLVED)
        inner = rest.get("operator", {}) if isinstance(rest, dict) else {}
        if inner.get("type") != "property_accessor":
            return UNRESOLVED
        value = value.get(inner["operands"]["operand_1"], UNRESOLVED)
        rest = inner["operands"]["operand_2"]
    return UNRESOLVED


def _evaluate_function(function: Mapping[str, Any], scope: Scope) -> Any:
    arguments = [evaluate(value, scope) for value in function.get("parameters", {}).values()]
    if function["type"] == "union" and all(isinstance(arg, dict) for arg in arguments):
        merged: dict[str, Any] = {}
        for argument in arguments:
            merged.update(argument)
        return merged
    if function["type"] == "concat" and all(isinstance(arg, list) for arg in arguments):
        return [item for argument in arguments for item in argument]
    if function["type"] == "empty" and len(arguments) == 1:
        return arguments[0] in ("", [], {}, None)
    return UNRESOLVED


# -- finding things --------------------------------------------------------------------------

def modules(template: Template, path: str) -> list[dict[str, Any]]:
    """The configs of the modules whose path is ``path`` (a registry module's path such as
    ``avm/res/web/site``, or a local file such as ``app/api.bicep``); of a looped or
    conditional module, its item's config."""
    found = []
    for module in template.get("modules", {}).values():
        if module["detail"].get("path") != path:
            continue
        config = module["config"]
        looped_or_conditional = "loop_type" in config or (
            "condition" in config and "config" in config)
        found.append(config["config"] if looped_or_conditional else config)
    return found


def registry_modules(template: Template) -> dict[str, str]:
    """Each registry module's path and its pinned version (tag)."""
    return {
        module["detail"]["path"]: module["detail"].get("tag", "")
        for module in template.get("modules", {}).values()
        if module["type"] == "bicep_registry_alias"
    }


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    """The template's resources of type ``kind`` (not ``existing`` ones), by symbolic name;
    a conditional or looped resource's config."""
    found = {}
    for name, resource in template.get("resources", {}).items():
        if resource["type"] != kind or resource.get("existing"):
            continue
        config = resource["config"]
        found[name] = config["config"] if "condition" in config and "config" in config else config
    return found


def module_arguments(template: Template, path: str, scope: Scope) -> dict[str, Any]:
    """The parameters ``template`` passes to its one module ``path``, evaluated in ``scope``."""
    (config,) = modules(template, path)
    return {name: evaluate(value, scope) for name, value in config["params"].items()}


# -- the checkov run -------------------------------------------------------------------------

@dataclass(frozen=True)
class CheckovFailure:
    """One failed checkov check on one resource of one file."""

    check_id: str
    check_name: str
    file: str
    resource: str


@dataclass(frozen=True)
class CheckovReport:
    """What one checkov run over a staged copy of some folders found."""

    parsing_errors: list[str]
    failures: list[CheckovFailure]
    resource_count: int


def stage(folders: Mapping[str, Path], into: Path) -> None:
    """Copy each folder's ``.bicep``, ``.json`` and ``.kql`` files to ``into/<name>`` with the
    ``extension`` line blanked, so checkov's pycep can read them."""
    for name, folder in folders.items():
        for source in sorted(folder.rglob("*")):
            if source.suffix not in {".bicep", ".json", ".kql"} or not source.is_file():
                continue
            target = into / name / source.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            text = bicep_text(source) if source.suffix == ".bicep" else source.read_text("utf-8")
            target.write_text(text, encoding="utf-8")


def checkov_report(staged: Path, checkov: Path = CHECKOV) -> CheckovReport:
    """Run checkov's Bicep checks once over ``staged`` (offline: ``--skip-download``).

    A file checkov cannot parse is skipped with exit code 0 and only counted in the JSON
    summary; its name is in the CLI output ("Error parsing file ..."), so both are written.

    Raises:
        FileNotFoundError: checkov's venv is missing (``make checkov-venv`` makes it).
    """
    if not checkov.exists():
        raise FileNotFoundError(f"{checkov} is missing: `make checkov-venv` installs it")
    output = staged / ".checkov"
    completed = subprocess.run(  # our own venv's checkov on our own files
        [str(checkov), "-d", str(staged), "--framework", "bicep", "--skip-download",
         "--compact", "-o", "cli", "-o", "json", "--output-file-path", str(output)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    if completed.returncode not in (0, 1):  # 1: some check failed
        raise RuntimeError(f"checkov exited {completed.returncode}: {completed.stderr[-2000:]}")
    raw = json.loads((output / "results_json.json").read_text(encoding="utf-8"))
    reports = raw if isinstance(raw, list) else [raw]
    unparsed = [
        Path(line.removeprefix("Error parsing file ").strip()).relative_to(staged).as_posix()
        for line in completed.stdout.splitlines() if line.startswith("Error parsing file ")
    ]
    counted = sum(int(report.get("summary", report).get("parsing_errors", 0))
                  for report in reports)
    if counted != len(unparsed):
        unparsed.append(f"({counted} counted, {len(unparsed)} named in checkov's output)")
    failures = [
        CheckovFailure(check["check_id"], check["check_name"],
                       check["file_path"].lstrip("/"), check["resource"])
        for report in reports
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    resources_seen = sum(int(report.get("summary", report).get("resource_count", 0))
                         for report in reports)
    return CheckovReport(unparsed, failures, resources_seen)


@dataclass(frozen=True)
class CheckovSkip:
    """A checkov check we accept failing on one resource, and why."""

    check_id: str
    file: str
    resource: str
    reason: str


def checkov_skips(path: Path = CHECKOV_SKIPS) -> list[CheckovSkip]:
    """The skip list (``[[skip]]`` tables with ``id``, ``file``, ``resource``, ``reason``).

    Raises:
        ValueError: an entry lacks a field or gives no reason.
    """
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("skip", [])
    skips = []
    for number, entry in enumerate(entries, start=1):
        missing = [key for key in ("id", "file", "resource", "reason")
                   if not str(entry.get(key, "")).strip()]
        if missing:
            raise ValueError(f"{path.name} skip #{number} ({entry.get('id')!r}): "
                             f"{', '.join(missing)} missing")
        skips.append(CheckovSkip(entry["id"], entry["file"], entry["resource"], entry["reason"]))
    return skips


def unlisted_failures(
    failures: Iterable[CheckovFailure], skips: Iterable[CheckovSkip]
) -> list[CheckovFailure]:
    """The failures no skip entry covers (same check, file and resource)."""
    listed = {(skip.check_id, skip.file, skip.resource) for skip in skips}
    return [each for each in failures if (each.check_id, each.file, each.resource) not in listed]


def stale_skips(
    failures: Iterable[CheckovFailure], skips: Iterable[CheckovSkip]
) -> list[CheckovSkip]:
    """Skip entries no failure needs any more (the template was fixed: drop the entry)."""
    failing = {(each.check_id, each.file, each.resource) for each in failures}
    return [skip for skip in skips if (skip.check_id, skip.file, skip.resource) not in failing]
