"""The layers of DESIGN.md, checked on the source: handlers never touch a platform
library, and SQL (and the database drivers) live only in bot/store/."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = {"telegram", "nio"}
DRIVERS = {"sqlite3", "aiosqlite"}
SQL = re.compile(
    r"\b(SELECT\s|INSERT\s+(OR\s+\w+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
    r"|CREATE\s+(TABLE|(UNIQUE\s+)?INDEX|TRIGGER|VIRTUAL\s+TABLE)\b|DROP\s+(TABLE|INDEX)\b"
    r"|ALTER\s+TABLE\b|PRAGMA\s+\w+|BEGIN\s+(IMMEDIATE|TRANSACTION)\b)"
)


def modules(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))


def outside_store() -> list[Path]:
    store = ROOT / "bot" / "store"
    return [p for p in modules("bot", "handlers") if store not in p.parents]


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, top-level module) for every import in a file, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes: prose, not code."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def string_literals(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every string literal but docstrings; f-strings by their fixed parts."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
            yield node.lineno, text
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        ):
            yield node.lineno, node.value


def test_the_checks_see_the_code() -> None:
    """Guard against a vacuous pass: the files are found and the patterns bite."""
    assert len(modules("handlers")) >= 5
    assert ROOT / "bot" / "cli.py" in outside_store()
    assert not any(ROOT / "bot" / "store" in p.parents for p in outside_store())
    store_sql = [t for p in modules("bot/store") for _, t in string_literals(p) if SQL.search(t)]
    assert len(store_sql) > 20
    for sql in ("SELECT id FROM x", "INSERT OR IGNORE INTO t", "UPDATE t SET a = 1", "PRAGMA x"):
        assert SQL.search(sql), sql
    for prose in ("Select a tag", "select one", "UPDATE", "Don't DELETE this"):
        assert not SQL.search(prose), prose


@pytest.mark.parametrize("path", modules("handlers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_handlers_do_not_import_platform_libraries(path: Path) -> None:
    bad = [(line, name) for line, name in imported(path) if name in PLATFORM_LIBRARIES]
    assert bad == [], f"{path.relative_to(ROOT)} imports a platform library: {bad}"


def test_importing_handlers_pulls_in_no_platform_library() -> None:
    """Indirect imports count too: handlers → bot.* must not reach telegram or nio."""
    code = (
        "import sys, handlers, handlers.browse, handlers.admin, handlers.subscriptions; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('telegram', 'nio')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert done.stdout.strip() == "[]"


def test_sql_only_in_the_store() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {text.strip()[:60]!r}"
        for path in outside_store()
        for line, text in string_literals(path)
        if SQL.search(text)
    ]
    assert offenders == [], "SQL outside bot/store/:\n" + "\n".join(offenders)


def test_database_drivers_only_in_the_store() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in outside_store()
        for line, name in imported(path)
        if name in DRIVERS
    ]
    assert offenders == [], "database driver imported outside bot/store/:\n" + "\n".join(offenders)
