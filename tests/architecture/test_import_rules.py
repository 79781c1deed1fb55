"""The layer rules of docs/architecture.md, checked on the source itself.

Every Python module of the three services and the shared package is parsed
(not imported), and every import in it -- top level, inside functions or
under ``TYPE_CHECKING`` -- is checked against the rules below. A new module
that breaks one fails this test with the file, the line and the rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("checkin", "followup", "analytics")
PACKAGES = {name: ROOT / "services" / name / name for name in SERVICES}
COMMON = ROOT / "libs" / "common" / "turnout_common"

# turnout_common modules with no I/O: the only ones a domain may use.
PURE_COMMON = {
    "turnout_common.clock",
    "turnout_common.emails",
    "turnout_common.types",
    "turnout_common.auth",
    "turnout_common.privacy",
    "turnout_common.regulars",
}
DATABASE = ("pymongo", "bson", "motor")
WEB_AND_WIRE = ("flask", "werkzeug", "jinja2", "kafka", "requests", "gunicorn", "smtplib")
# Collection methods that mean "a query is written here" (str.find and the like are not listed).
COLLECTION_CALLS = {
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "replace_one",
    "delete_one",
    "delete_many",
    "find_one",
    "find_one_and_update",
    "find_one_and_delete",
    "find_one_and_replace",
    "aggregate",
    "bulk_write",
    "count_documents",
    "estimated_document_count",
    "create_index",
    "distinct",
    "watch",
}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}"


def _module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module name) for every import in the source, relative ones resolved."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # "from pkg import sub" may name a submodule: check pkg.sub too.
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def collection_calls(source: str) -> list[tuple[int, str]]:
    return [
        (node.lineno, node.func.attr)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in COLLECTION_CALLS
    ]


def _starts(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def check_file(path: Path, package_root: Path, display: str) -> list[Violation]:
    """Every rule broken by one module of a service (package_root) or of turnout_common."""
    source = path.read_text(encoding="utf-8")
    module = _module_name(path, package_root)
    own = package_root.name
    layer = module.split(".")[1] if module.count(".") else ""
    out: list[Violation] = []

    def broke(line: int, rule: str) -> None:
        out.append(Violation(display, line, rule))

    for line, name in imports_of(source, module, path.name == "__init__.py"):
        if own == "turnout_common":
            if _starts(name, SERVICES):
                broke(line, f"the shared package imports a service ({name})")
            continue
        others = tuple(s for s in SERVICES if s != own)
        if _starts(name, others):
            broke(line, f"a service imports another service ({name})")
        if layer == "domain":
            if _starts(name, ("turnout_common",)) and not _starts(name, PURE_COMMON):
                broke(line, f"the domain imports infrastructure ({name})")
            if _starts(name, DATABASE + WEB_AND_WIRE):
                broke(line, f"the domain imports infrastructure ({name})")
            if _starts(name, tuple(f"{own}.{layer_}" for layer_ in ("service_layer", "adapters", "entrypoints"))):
                broke(line, f"the domain imports an outer layer ({name})")
            if name in (f"{own}.bootstrap", f"{own}.config"):
                broke(line, f"the domain imports an outer layer ({name})")
        if layer == "service_layer":
            if _starts(name, DATABASE + WEB_AND_WIRE):
                broke(line, f"the service layer imports infrastructure ({name}); use a port")
            if _starts(name, (f"{own}.entrypoints", f"{own}.bootstrap")):
                broke(line, f"the service layer imports an outer layer ({name})")
        if layer == "entrypoints" and _starts(name, DATABASE):
            broke(line, f"an entrypoint imports the database driver ({name}); go through the service layer")
    if own != "turnout_common" and layer in ("domain", "service_layer", "entrypoints"):
        for line, method in collection_calls(source):
            broke(line, f"a query ({method}) outside adapters/; move it into a repository")
    return out


def all_violations() -> list[Violation]:
    found: list[Violation] = []
    for root in [*PACKAGES.values(), COMMON]:
        for path in sorted(root.rglob("*.py")):
            found.extend(check_file(path, root, str(path.relative_to(ROOT))))
    return found


def test_the_code_keeps_the_layer_rules() -> None:
    violations = all_violations()
    assert not violations, "layer rules broken:\n" + "\n".join(map(str, violations))


def test_every_package_was_read() -> None:
    for root in [*PACKAGES.values(), COMMON]:
        assert len(list(root.rglob("*.py"))) > 3, root


VIOLATING = {
    "domain/rules.py": ("from pymongo import MongoClient\n", "the domain imports infrastructure (pymongo)"),
    "domain/late.py": (
        "def f():\n    from ..adapters import mongo\n",
        "the domain imports an outer layer (svc.adapters)",
    ),
    "service_layer/use.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from svc.bootstrap import Context\n",
        "the service layer imports an outer layer (svc.bootstrap)",
    ),
    "service_layer/query.py": (
        "def f(db):\n    return db.people.find_one({})\n",
        "a query (find_one) outside adapters/",
    ),
    "entrypoints/api.py": ("import bson\n", "an entrypoint imports the database driver (bson)"),
    "entrypoints/other.py": ("from followup.domain import nudges\n", "a service imports another service (followup"),
}


@pytest.mark.parametrize("relative", sorted(VIOLATING))
def test_a_violation_is_reported_with_its_rule(tmp_path: Path, relative: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(__import__(__name__, fromlist=["SERVICES"]), "SERVICES", ("svc", "followup"))
    root = tmp_path / "svc"
    source, rule = VIOLATING[relative]
    path = root / relative
    path.parent.mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (path.parent / "__init__.py").write_text("")
    path.write_text(source)
    found = check_file(path, root, relative)
    assert any(rule in str(v) for v in found), found


def test_allowed_imports_are_not_reported(tmp_path: Path) -> None:
    root = tmp_path / "checkin"
    for relative, source in {
        "domain/rules.py": "from turnout_common.clock import utcnow\nfrom checkin.domain.model import X\n",
        "service_layer/use.py": "from checkin.service_layer.ports import Repo\nname = 'a'.find('b')\n",
        "adapters/repo.py": "from pymongo import ReturnDocument\ndef f(db):\n    return db.x.find_one({})\n",
        "entrypoints/api.py": "from flask import Blueprint\nfrom checkin.service_layer import checkins\n",
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        assert check_file(path, root, relative) == [], relative
