"""Write the schema's SDL: `python -m headcount.api.graphql.export` (or `make schema`).

`schema.graphql` at the repository root is checked in and compared with the live schema
by a test, so every schema change shows up in review as a diff of that file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from headcount.api.graphql.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parents[4] / "schema.graphql"


def sdl() -> str:
    return schema.as_str().rstrip() + "\n"


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_FILE
    target.write_text(sdl(), encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")


if __name__ == "__main__":
    main()
