"""The layer rules, read from the source (AST), so a change that breaks one fails here.

* The domain stays pure: no module in headcount.domain imports an I/O library.
* Only the ledger speaks SQL: no module outside headcount.ledger and headcount.migrations
  imports SQLAlchemy or calls methods on a unit of work (`tx.execute`, `tx.add`, …); the
  service layer passes `tx` to ledger functions and composes their answers.
* Every explicit lock is taken through ledger/locks.py: `with_for_update`, `FOR UPDATE`,
  `FOR SHARE`, `SKIP LOCKED` and `pg_advisory…` appear in no other module's code
  (docstrings and comments may name them).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import headcount

PACKAGE = Path(headcount.__file__).parent

FORBIDDEN_IN_DOMAIN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "redis",
    "asyncpg",
    "aiosqlite",
    "httpx",
    "strawberry",
)
SQL_LAYERS = ("ledger/", "migrations/")
LOCKS = "ledger/locks.py"
LOCK_WORDS = re.compile(r"FOR (NO KEY |KEY )?(UPDATE|SHARE)|SKIP LOCKED|pg_advisory", re.IGNORECASE)


def modules() -> Iterator[tuple[str, ast.Module]]:
    """(path relative to the package, parsed module) for every module of headcount."""
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text())


def imported(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def imports_sqlalchemy(tree: ast.Module) -> bool:
    return any(name.split(".")[0] == "sqlalchemy" for name in imported(tree))


def docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants (prose, which may name a lock)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(
            node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
        ) and (body := node.body):
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def lock_code(tree: ast.Module) -> Iterator[str]:
    """What in this module's code (not its prose) takes an explicit lock."""
    prose = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
            node.attr == "with_for_update" or node.attr.startswith("pg_advisory")
        ):
            yield f"line {node.lineno}: .{node.attr}"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in prose
            and LOCK_WORDS.search(node.value)
        ):
            yield f"line {node.lineno}: {node.value[:60]!r}"


def tx_method_calls(tree: ast.Module) -> Iterator[str]:
    """Calls of a method of a unit of work (named `tx` throughout, ledger/db.py)."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "tx"
        ):
            yield f"line {node.lineno}: tx.{node.func.attr}(…)"


def test_domain_imports_no_io_library() -> None:
    offenders = [
        f"{rel}: {name}"
        for rel, tree in modules()
        if rel.startswith("domain/")
        for name in imported(tree)
        if name.split(".")[0] in FORBIDDEN_IN_DOMAIN
    ]
    assert offenders == []


def test_only_the_ledger_imports_sqlalchemy() -> None:
    offenders = [
        rel
        for rel, tree in modules()
        if not rel.startswith(SQL_LAYERS) and imports_sqlalchemy(tree)
    ]
    assert offenders == [], "SQL belongs in a ledger/ module named for what it holds"


def test_only_the_ledger_calls_the_unit_of_work() -> None:
    offenders = [
        f"{rel} {call}"
        for rel, tree in modules()
        if not rel.startswith(SQL_LAYERS)
        for call in tx_method_calls(tree)
    ]
    assert offenders == [], "pass `tx` to a ledger function instead"


def test_every_lock_is_taken_in_ledger_locks() -> None:
    offenders = [
        f"{rel} {what}" for rel, tree in modules() if rel != LOCKS for what in lock_code(tree)
    ]
    assert offenders == [], "take the lock through a named function of ledger/locks.py"


def test_the_checks_see_what_they_look_for() -> None:
    """The checks above would catch a statement or a lock written outside the ledger."""
    sample = ast.parse(
        '"""A docstring may say FOR UPDATE."""\n'
        "from sqlalchemy import select\n"
        "async def f(tx):\n"
        "    q = select(Order).with_for_update(skip_locked=True)\n"
        "    await tx.execute(text('SELECT pg_advisory_xact_lock(1)'))\n"
    )
    assert imports_sqlalchemy(sample)
    assert [c.split(":")[1].strip() for c in tx_method_calls(sample)] == ["tx.execute(…)"]
    assert len(list(lock_code(sample))) == 2  # the attribute and the string, not the docstring
