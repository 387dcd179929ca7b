"""`make bench`: Headcount against this machine's own limits, in one run.

    python -m bench [--quick] [--suite tickets|changes|sqlite|presence|queue|webhooks|fanout|all]

Every figure is the median of `--reps` runs; every throughput is printed beside the limit
measured in the same run (pgbench / a raw SQLite loop / redis-benchmark) and their ratio.
The markdown table is printed and written to bench/out/latest.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

from bench import change_log, fanout, limits, presence_storm, waiting_room, webhooks
from bench.flash_sale import SaleResult, flash_sale, http_floor
from bench.machine import ensure_tool, machine, private_postgres, scratch_postgres_database
from bench.report import Row, median, table
from bench.servers import serve
from headcount.ledger.migrate import upgrade
from support.private_services import private_redis

OUT = Path(__file__).parent / "out"
HOT_BUCKETS = 16


def _sale_rows(
    label: str,
    base: str,
    url: str,
    limit: float,
    *,
    stocks: list[int],
    conns: list[int],
    reps: int,
    seconds: float,
    stock_buckets: int = 1,
    limit_label: str = "limit/s",
) -> list[Row]:
    rows = []
    for stock in stocks:
        for connections in conns:
            runs: list[SaleResult] = [
                flash_sale(
                    base,
                    url,
                    stock=stock,
                    connections=connections,
                    seconds=seconds,
                    stock_buckets=stock_buckets,
                )
                for _ in range(reps)
            ]
            ok = median([r.successes_per_s for r in runs])
            rows.append(
                Row(
                    f"{label} stock {stock:,}, {connections} in flight",
                    {
                        "attempts/s": median([r.attempts_per_s for r in runs]),
                        "holds/s": ok,
                        "p50 ms": median([r.p50_ms for r in runs]),
                        "p99 ms": median([r.p99_ms for r in runs]),
                        "oversold": max(r.oversold for r in runs),
                        "limit/s": limit,
                        "holds/limit": round(ok / limit, 2) if limit else 0.0,
                        "limit": limit_label,
                    },
                )
            )
            print(table(rows[-1:]), flush=True)
    return rows


def tickets_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    ensure_tool("wrk", "wrk")
    ensure_tool("pgbench", "postgresql-contrib")
    rows: list[Row] = []
    conns = [64, 256]
    stocks = [1_000, 100_000]
    # Two processes share live presence through Redis (serve refuses --workers 2 without).
    with (
        private_redis() as redis,
        private_postgres() as server,
        scratch_postgres_database(server=server) as url,
    ):
        env = {"HEADCOUNT_REDIS_URL": redis.url}
        with serve(url, workers=2, log=log, extra_env=env) as served:
            base = served.base
            for connections in conns:
                hot = median(
                    [
                        limits.pgbench_hot_row(url, clients=connections, seconds=args.seconds)
                        for _ in range(args.reps)
                    ]
                )
                rows += _sale_rows(
                    "PostgreSQL, 2 processes,",
                    base,
                    url,
                    hot,
                    stocks=stocks,
                    conns=[connections],
                    reps=args.reps,
                    seconds=args.seconds,
                    limit_label="pgbench hot row",
                )
                # The HTTP stack's own ceiling here: no endpoint can beat it.
                floor = median(
                    [
                        http_floor(base, connections=connections, seconds=args.seconds)
                        for _ in range(args.reps)
                    ]
                )
                rows.append(
                    Row(
                        f"HTTP floor: GET /healthz (no auth, no database), 2 processes, {connections} in flight",
                        {"attempts/s": floor, "limit/s": hot, "holds/limit": round(floor / hot, 2)},
                    )
                )
                print(table(rows[-1:]), flush=True)
                # Hot-inventory mode against the same single-row limit (target: 2x), and
                # pgbench's own rate over as many rows, the ceiling of that design.
                spread = median(
                    [
                        limits.pgbench_hot_row(
                            url, clients=connections, seconds=args.seconds, buckets=HOT_BUCKETS
                        )
                        for _ in range(args.reps)
                    ]
                )
                rows.append(
                    Row(
                        f"pgbench itself over {HOT_BUCKETS} rows, {connections} in flight",
                        {"holds/s": spread, "limit/s": hot, "holds/limit": round(spread / hot, 2)},
                    )
                )
                rows += _sale_rows(
                    f"PostgreSQL, 2 processes, hot inventory ({HOT_BUCKETS} buckets),",
                    base,
                    url,
                    hot,
                    stocks=[100_000],
                    conns=[connections],
                    reps=args.reps,
                    seconds=args.seconds,
                    stock_buckets=HOT_BUCKETS,
                    limit_label="pgbench hot row",
                )
    return rows


def changes_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """The flash sale with the change log on and off, taking turns in one run, and how far
    the feed trails the sale (bench/change_log.py)."""
    ensure_tool("wrk", "wrk")
    rows: list[Row] = []
    with (
        private_redis() as redis,
        private_postgres() as server,
        scratch_postgres_database(server=server) as url,
    ):
        rows += change_log.compare(
            url,
            log,
            {"HEADCOUNT_REDIS_URL": redis.url},
            reps=args.reps,
            seconds=args.seconds,
        )
        print(table(rows), flush=True)
    return rows


def sqlite_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    ensure_tool("wrk", "wrk")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        ceiling = median([limits.sqlite_hot_row(args.seconds) for _ in range(args.reps)])
        with (
            private_redis() as redis,
            serve(url, workers=2, log=log, extra_env={"HEADCOUNT_REDIS_URL": redis.url}) as served,
        ):
            rows += _sale_rows(
                "SQLite, 2 processes,",
                served.base,
                url,
                ceiling,
                stocks=[1_000],
                conns=[64],
                reps=args.reps,
                seconds=args.seconds,
            )
    return rows


def presence_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    ensure_tool("redis-benchmark", "redis-tools")
    rows: list[Row] = []
    with private_redis() as redis:
        redis_url = redis.url
        for clients in (64,):
            limit = median(
                [
                    presence_storm.redis_benchmark_admit(
                        redis_url, clients=clients, requests=200_000
                    )
                    for _ in range(args.reps)
                ]
            )
            joins = median(
                [
                    presence_storm.engine_admit_rate(
                        redis_url, clients=clients, seconds=args.seconds
                    )
                    for _ in range(args.reps)
                ]
            )
            beats = median(
                [
                    presence_storm.engine_heartbeat_rate(
                        redis_url, clients=clients, seconds=args.seconds
                    )
                    for _ in range(args.reps)
                ]
            )
            for label, rate in (("joins", joins), ("heartbeats", beats)):
                rows.append(
                    Row(
                        f"presence engine (Redis), {label}, {clients} in flight",
                        {"ops/s": rate, "limit/s": limit, "ops/limit": round(rate / limit, 2)},
                    )
                )
                print(table(rows[-1:]), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/viewers.db"
            upgrade(url)
            env = {"HEADCOUNT_REDIS_URL": redis_url, "HEADCOUNT_PRESENCE_TTL": "30"}
            with serve(url, workers=1, log=log, extra_env=env) as served:
                result = presence_storm.websocket_viewers(
                    served.base,
                    served.pid,
                    count=args.viewers,
                    hold_seconds=max(20.0, args.seconds * 4),
                )
            rows.append(
                Row(
                    "WebSocket viewers on 1 process (Redis), heartbeat every 5 s",
                    {
                        "viewers held": result.viewers,
                        "refused": result.refused,
                        "dropped": result.dropped,
                        "ramp joins/s": result.ramp_joins_per_s,
                        "ramp join p50 ms": result.join_p50_ms,
                        "ramp join p99 ms": result.join_p99_ms,
                        "join p50 ms (all held)": result.steady_join_p50_ms,
                        "join p99 ms (all held)": result.steady_join_p99_ms,
                        "ping p99 ms": result.pong_p99_ms,
                        "server cores": result.server_cores,
                        "RSS KiB/viewer": result.rss_per_viewer_kib,
                    },
                )
            )
            print(table(rows[-1:]), flush=True)
    return rows


def queue_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """The waiting room with 100,000 queued: joins/s against the join script's own limit,
    memory per visitor, and position lookups at 1k/10k/100k (flat if O(log n))."""
    ensure_tool("redis-benchmark", "redis-tools")
    rows: list[Row] = []
    with private_redis() as redis:
        limit = median(
            [
                waiting_room.redis_benchmark_join(redis.url, clients=64, requests=200_000)
                for _ in range(args.reps)
            ]
        )
        scale = waiting_room.redis_scale(redis.url)
    local = waiting_room.memory_scale()
    for label, found, ceiling in (
        ("Redis, 64 joining at once", scale, limit),
        ("in-process store, 1 joining at a time", local, None),
    ):
        figures: dict[str, float | int | str] = {
            "queued": waiting_room.VISITORS,
            "joins/s": round(found.joins_per_s),
            "bytes/visitor": round(found.bytes_per_visitor),
        }
        if ceiling is not None:
            figures["limit/s"] = round(ceiling)
            figures["joins/limit"] = round(found.joins_per_s / ceiling, 2)
        for size, micros in found.lookup_us.items():
            figures[f"lookup µs @{size:,}"] = round(micros, 1)
        for size, micros in found.server_us.items():
            figures[f"in Redis µs @{size:,}"] = round(micros, 1)
        rows.append(Row(f"waiting room: {label}", figures))
        print(table(rows[-1:]), flush=True)
    return rows


def webhooks_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """Commit → delivery through one `headcount relay` at 500 changes/s (target p99 < 1 s)."""
    rows: list[Row] = []
    with private_postgres() as server, scratch_postgres_database(server=server) as url:
        runs = [
            webhooks.commit_to_delivery(url, log, rate=500.0, seconds=max(10.0, args.seconds * 4))
            for _ in range(args.reps)
        ]
    rows.append(
        Row(
            "webhooks: commit → delivery, 500 changes/s over 8 events, 1 relay",
            {
                "changes/s": median([r.rate for r in runs]),
                "delivered": min(r.delivered for r in runs),
                "sent": min(r.sent for r in runs),
                "p50 ms": median([r.p50_ms for r in runs]),
                "p99 ms": median([r.p99_ms for r in runs]),
                "max ms": max(r.max_ms for r in runs),
                "load avg (1/5 min)": webhooks.load_average(),
            },
        )
    )
    print(table(rows[-1:]), flush=True)
    return rows


def fanout_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """Capacity sockets watching one event: server CPU and snapshot reads per second."""
    with (
        private_postgres() as admin,
        scratch_postgres_database(server=admin) as url,
        private_redis() as redis,
    ):
        env = {"HEADCOUNT_REDIS_URL": redis.url}
        with serve(url, workers=2, log=log, extra_env=env) as served:
            result = fanout.capacity_watchers(
                served.base,
                served.pid,
                url,
                redis.port,
                watchers=args.watchers,
                seconds=max(20.0, args.seconds * 4),
            )
    row = Row(
        f"{result.watchers:,} capacity sockets on one event, 2 processes, 1 s tick",
        {
            "server cores": result.server_cores,
            "snapshot tx/s": result.snapshot_tx_per_s,
            "Redis cmds/s": result.redis_cmds_per_s,
            "pushes/s": result.pushes_per_s,
            "changes": result.changes,
        },
    )
    print(table([row]), flush=True)
    return [row]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--suite",
        choices=["tickets", "changes", "sqlite", "presence", "queue", "webhooks", "fanout", "all"],
        default="all",
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--viewers", type=int, default=5000, help="WebSocket viewers to hold")
    parser.add_argument("--watchers", type=int, default=10_000, help="capacity sockets to hold")
    parser.add_argument("--quick", action="store_true", help="1 repetition of 3 s: a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.seconds = 1, 3.0
    OUT.mkdir(exist_ok=True)
    log = OUT / "servers.log"
    started = dt.datetime.now(dt.UTC)
    header = (
        f"# Headcount benchmark, {started:%Y-%m-%d %H:%M} UTC\n\n"
        f"Machine: {machine().describe()}\n\n"
        f"Command: `python -m bench {' '.join(sys.argv[1:])}` "
        f"(median of {args.reps} runs of {args.seconds:.0f} s each)\n"
    )
    print(header, flush=True)
    rows: list[Row] = []
    suites = {
        "tickets": tickets_suite,
        "changes": changes_suite,
        "sqlite": sqlite_suite,
        "presence": presence_suite,
        "queue": queue_suite,
        "webhooks": webhooks_suite,
        "fanout": fanout_suite,
    }
    for name, suite in suites.items():
        if args.suite in (name, "all"):
            rows += suite(args, log)
    result = header + "\n" + table(rows) + "\n"
    (OUT / "latest.md").write_text(result)
    print("\n" + result)


if __name__ == "__main__":
    main()
