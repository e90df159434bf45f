"""The package's shape as a specification: one owner per piece of state, layers that point down."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "truelabel_db"
META_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS truelabel_meta\.([a-z_]+)")
STAGES = ("copy", "capture", "follow", "verify")


def _sources() -> dict[Path, str]:
    return {path: path.read_text("utf-8") for path in PACKAGE.rglob("*.py")}


def _meta_tables() -> set[str]:
    ddl = "\n".join(p.read_text("utf-8") for p in (PACKAGE / "schema" / "sql").glob("*.sql"))
    return set(META_TABLE.findall(ddl))


def test_every_bookkeeping_table_has_one_owner_in_the_catalog() -> None:
    tables = _meta_tables()
    assert {"copy_runs", "follow_state", "quarantine", "reverse_changelog"} <= tables
    for path, text in _sources().items():
        if path.is_relative_to(PACKAGE / "catalog"):
            continue
        named = {t for t in tables if f"truelabel_meta.{t}" in text}
        assert not named, f"{path.relative_to(PACKAGE)} names {sorted(named)}: go through truelabel_db.catalog"


def test_each_catalog_table_is_named_by_a_single_catalog_module() -> None:
    owners: dict[str, set[str]] = {}
    for path in (PACKAGE / "catalog").glob("*.py"):
        text = path.read_text("utf-8")
        for table in _meta_tables():
            if re.search(rf"truelabel_meta\.{table}\b", text):
                owners.setdefault(table, set()).add(path.name)
    shared = {t: sorted(o) for t, o in owners.items() if len(o) > 1}
    assert not shared


def test_only_the_catalog_knows_the_changelog_table() -> None:
    for path, text in _sources().items():
        if path.is_relative_to(PACKAGE / "catalog"):
            continue
        assert "_truelabel_changelog" not in text and "_truelabel_capture" not in text, path


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_stages_are_siblings_that_import_no_other_stage() -> None:
    for stage in STAGES:
        for path in (PACKAGE / stage).rglob("*.py"):
            others = {m for m in _imports(path) for other in STAGES
                      if other != stage and m.startswith(f"truelabel_db.{other}")}
            assert not others, f"{path.relative_to(PACKAGE)} imports {sorted(others)}"


def test_lower_layers_do_not_import_the_stages() -> None:
    for layer in ("rows", "catalog", "schema", "legacy"):
        for path in (PACKAGE / layer).rglob("*.py"):
            upward = {m for m in _imports(path)
                      if m.split(".")[1:2] and m.split(".")[1] in (*STAGES, "cutover", "migrate", "cli")}
            assert not upward, f"{path.relative_to(PACKAGE)} imports {sorted(upward)}"
