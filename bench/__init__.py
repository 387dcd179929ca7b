"""Benchmarks: Headcount against the machine's own limits, measured in the same run.

They start servers and private Redis and PostgreSQL instances with the helpers the tests
use (tests/support), imported as `support` exactly as pytest imports them (its
`pythonpath` setting), so that there is one way to run a server process.
"""

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
