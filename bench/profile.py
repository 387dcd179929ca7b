"""Profile the order path: one server process under wrk, sampled by py-spy.

    python -m bench.profile [--seconds 8] [--connections 32] [--before]

Prints the functions with the most inclusive and self samples (from py-spy's raw output),
so a change to the hot path can be checked before and after.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.admission import BEFORE
from bench.flash_sale import run_wrk, setup_stock
from bench.machine import ensure_tool, scratch_postgres_database
from bench.servers import serve


def summarize(raw: Path, top: int = 25) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].split("/")[-1] + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines += ["self:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--before", action="store_true", help="without batching and sold-out marks (issue 14)"
    )
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    with tempfile.TemporaryDirectory() as tmp, scratch_postgres_database("hc_prof") as url:
        log = Path(tmp) / "server.log"
        env = dict(BEFORE) if args.before else {}
        with serve(url, workers=1, log=log, extra_env=env) as served:
            base = served.base
            event_id, tt_id = setup_stock(base, 1_000_000)
            pid = subprocess.run(
                [
                    "pgrep",
                    "-f",
                    f"headcount serve --host 127.0.0.1 --port {base.rsplit(':', 1)[1]}",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[0]
            raw = Path(tmp) / "profile.txt"
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    pid,
                    "-d",
                    str(int(args.seconds)),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result: list[tuple[float, float, float, int]] = []
            load = threading.Thread(
                target=lambda: result.append(
                    run_wrk(
                        base,
                        event_id,
                        tt_id,
                        connections=args.connections,
                        seconds=args.seconds - 1,
                    )
                )
            )
            load.start()
            load.join()
            spy.wait(30)
            rps, p50, p99, errors = result[0]
            print(
                f"1 process: {rps:.0f} orders/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, socket errors {errors}"
            )
            print(summarize(raw))


if __name__ == "__main__":
    main()
