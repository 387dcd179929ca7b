"""Issue 14's admission figures: batched holds, their CPU, and refusals after sell-out.

Each is taken against servers with batching and sold-out marks on (the defaults) and, in
the same run, off (`HEADCOUNT_HOLD_BATCH_MAX=0`, `HEADCOUNT_SOLD_OUT_MARK_TTL=0`: the path
before them), so before and after share one machine state. CPU per hold is the servers'
and the database's CPU seconds over the successful holds (bench/machine.py reads /proc).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.flash_sale import flash_sale, run_wrk, setup_stock
from bench.machine import postmaster_pid, tree_cpu_seconds
from bench.report import Row, median
from bench.servers import serve

BEFORE = {"HEADCOUNT_HOLD_BATCH_MAX": "0", "HEADCOUNT_SOLD_OUT_MARK_TTL": "0"}
# Sold out after the first few holds: the rest of the run is refusals.
SOLD_OUT_STOCK = 50
# Refusals are also measured with few in flight: at 64 the HTTP queue alone sets their
# latency (Little's law: 64 in flight at ~4,000/s is ~16 ms on average before any tail),
# so a p99 read there says how deep the queue is, not what a refusal costs.
FEW_IN_FLIGHT = 16


def rows(
    label: str,
    url: str,
    log: Path,
    env: Mapping[str, str],
    *,
    limit: float,
    limit_label: str,
    floor: float | None,
    conns: list[int],
    reps: int,
    seconds: float,
) -> list[Row]:
    found: list[Row] = []
    for mode, extra in (("before (no batch, no marks)", BEFORE), ("batched + marks", {})):
        with serve(url, workers=2, log=log, extra_env={**env, **extra}) as served:
            db_pid = postmaster_pid(url) if url.startswith("postgresql") else None
            for connections in conns:
                holds, cpu, p99 = [], [], []
                for _ in range(reps):
                    roots = [served.pid] + ([db_pid] if db_pid else [])
                    spent = tree_cpu_seconds(*roots)
                    sale = flash_sale(
                        served.base, url, stock=100_000, connections=connections, seconds=seconds
                    )
                    spent = tree_cpu_seconds(*roots) - spent
                    holds.append(sale.successes_per_s)
                    cpu.append(1000 * spent / max(1, sale.successes))
                    p99.append(sale.p99_ms)
                    if sale.oversold:
                        raise RuntimeError(f"oversold by {sale.oversold}")
                ok = median(holds)
                found.append(
                    Row(
                        f"{label}, {mode}, {connections} in flight",
                        {
                            "holds/s": ok,
                            "p99 ms": median(p99),
                            "CPU ms/hold": round(median(cpu), 2),
                            "limit/s": limit,
                            "holds/limit": round(ok / limit, 2) if limit else 0.0,
                            "limit": limit_label,
                        },
                    )
                )
            for in_flight in (conns[0], FEW_IN_FLIGHT):
                found.append(
                    _refusals(
                        f"{label}, {mode}, after sell-out, {in_flight} in flight",
                        served.base,
                        in_flight,
                        limit=limit,
                        limit_label=limit_label,
                        floor=floor,
                        reps=reps,
                        seconds=seconds,
                    )
                )
    return found


def _refusals(
    label: str,
    base: str,
    in_flight: int,
    *,
    limit: float,
    limit_label: str,
    floor: float | None,
    reps: int,
    seconds: float,
) -> Row:
    refusals, p99s = [], []
    for _ in range(reps):
        event_id, tt_id = setup_stock(base, SOLD_OUT_STOCK)
        rps, _p50, tail, _errors = run_wrk(
            base, event_id, tt_id, connections=in_flight, seconds=seconds
        )
        refusals.append(rps)
        p99s.append(tail)
    rate = median(refusals)
    figures: dict[str, float | int | str] = {
        "refusals/s": rate,
        "p99 ms": median(p99s),
        "limit/s": limit,
        "refusals/limit": round(rate / limit, 2) if limit else 0.0,
        "limit": limit_label,
    }
    if floor:
        figures["refusals/floor"] = round(rate / floor, 2)
    return Row(label, figures)
