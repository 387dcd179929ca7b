"""The domain stays pure: no module in headcount.domain imports I/O libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import headcount.domain

FORBIDDEN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "redis",
    "asyncpg",
    "aiosqlite",
    "httpx",
    "strawberry",
)


def test_domain_imports_no_io_library() -> None:
    root = Path(headcount.domain.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
