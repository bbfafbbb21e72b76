"""The service passes one tenant context, not lists of ports: a guard on its signatures."""

from __future__ import annotations

import ast
from pathlib import Path

SERVICE = Path(__file__).resolve().parents[2] / "shared" / "service"
#: Parameters a service function may take besides ``self`` and the tenant context.
MOST = 4


def _signatures() -> list[tuple[str, int]]:
    found = []
    for module in sorted(SERVICE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args
                names = [a.arg for a in (*arguments.posonlyargs, *arguments.args,
                                         *arguments.kwonlyargs)]
                if arguments.vararg:
                    names.append(arguments.vararg.arg)
                if arguments.kwarg:
                    names.append(arguments.kwarg.arg)
                own = [n for n in names if n not in {"self", "cls", "context"}]
                found.append((f"{module.name}:{node.lineno} {node.name}", len(own)))
    return found


def test_the_service_reads_its_tenant_from_one_context() -> None:
    signatures = _signatures()
    assert len(signatures) > 30  # the walk found the service's functions
    too_many = [(where, count) for where, count in signatures if count > MOST]
    assert too_many == []


#: The app-wide ports: they hold a row per tenant, so their methods name the tenant (the event
#: sink is the worker's one exporter; its counts name their tenant like its events).
APP_WIDE_PORTS = {"TenantRegistry", "TenantHealthStore", "EventSink"}


def test_no_tenant_port_takes_a_tenant_id() -> None:
    ports = ast.parse((SERVICE / "ports.py").read_text(encoding="utf-8"))
    taking = [
        f"{cls.name}.{node.name}" for cls in ports.body
        if isinstance(cls, ast.ClassDef) and cls.name not in APP_WIDE_PORTS
        for node in cls.body if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef)
        and any(a.arg == "tenant_id" for a in (*node.args.args, *node.args.kwonlyargs))
    ]
    assert taking == []
