"""`make bench`: Headcount against this machine's own limits, in one run.

    python -m bench [--quick] [--suite tickets|admission|changes|sqlite|presence|herd|cluster|queue|webhooks|fanout|all]

Every figure is the median of `--reps` runs; every throughput is printed beside the limit
measured in the same run (pgbench / a raw SQLite loop / redis-benchmark) and their ratio.
The markdown table is printed and written to bench/out/latest.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from bench import (
    admission,
    change_log,
    cluster_leases,
    fanout,
    herd,
    limits,
    presence_storm,
    waiting_room,
    webhooks,
)
from bench.flash_sale import SaleResult, flash_sale, http_floor
from bench.machine import (
    ensure_tool,
    machine,
    postgres_and_redis,
    private_postgres,
    scratch_postgres_database,
    scratch_sqlite_database,
)
from bench.report import Row, median, median_of, table
from bench.servers import serve
from support.private_services import private_redis, private_redis_cluster

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
    with postgres_and_redis() as (url, redis):
        env = {"HEADCOUNT_REDIS_URL": redis.url}
        limits_seen: dict[int, tuple[float, float]] = {}
        with serve(url, workers=2, log=log, extra_env=env) as served:
            base = served.base
            for connections in conns:
                hot = _hot_row(args, url, connections)
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
                floor = _http_floor(args, base, connections)
                rows.append(
                    Row(
                        f"HTTP floor: GET /healthz (no auth, no database), 2 processes, {connections} in flight",
                        {"attempts/s": floor, "limit/s": hot, "holds/limit": round(floor / hot, 2)},
                    )
                )
                print(table(rows[-1:]), flush=True)
                # Hot-inventory mode against the same single-row limit (target: 2x), and
                # pgbench's own rate over as many rows, the ceiling of that design.
                spread = median_of(
                    args.reps,
                    partial(
                        limits.pgbench_hot_row,
                        url,
                        clients=connections,
                        seconds=args.seconds,
                        buckets=HOT_BUCKETS,
                    ),
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
                limits_seen[connections] = (hot, floor)
        rows += _postgres_admission(args, log, url, env, limits_seen)
    return rows


def _hot_row(args: argparse.Namespace, url: str, connections: int) -> float:
    """pgbench's own rate on one hot row: the limit every PostgreSQL sale is read against."""
    return median_of(
        args.reps, lambda: limits.pgbench_hot_row(url, clients=connections, seconds=args.seconds)
    )


def _http_floor(args: argparse.Namespace, base: str, connections: int) -> float:
    return median_of(
        args.reps, lambda: http_floor(base, connections=connections, seconds=args.seconds)
    )


def _sqlite_hot_row(args: argparse.Namespace) -> float:
    return median_of(args.reps, lambda: limits.sqlite_hot_row(args.seconds))


def _admission_rows(
    args: argparse.Namespace,
    log: Path,
    label: str,
    url: str,
    env: dict[str, str],
    *,
    limit: tuple[float, str],
    floor: float | None,
    conns: list[int],
) -> list[Row]:
    """Issue 14's targets: batched holds and refusals after sell-out, before and after,
    read against `limit` (its rate and what it is)."""
    found = admission.rows(
        label,
        url,
        log,
        env,
        limit=limit[0],
        limit_label=limit[1],
        floor=floor,
        conns=conns,
        reps=args.reps,
        seconds=args.seconds,
    )
    print(table(found), flush=True)
    return found


def _postgres_admission(
    args: argparse.Namespace,
    log: Path,
    url: str,
    env: dict[str, str],
    limits_seen: dict[int, tuple[float, float]],
) -> list[Row]:
    """The admission rows on PostgreSQL, against the limits measured at each concurrency."""
    hot, floor = limits_seen[min(limits_seen)]
    return _admission_rows(
        args,
        log,
        "PostgreSQL, 2 processes",
        url,
        env,
        limit=(hot, "pgbench hot row"),
        floor=floor,
        conns=sorted(limits_seen),
    )


def admission_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """Only issue 14's admission rows, with the limits they are read against (same run)."""
    ensure_tool("wrk", "wrk")
    ensure_tool("pgbench", "postgresql-contrib")
    rows: list[Row] = []
    with postgres_and_redis() as (url, redis):
        env = {"HEADCOUNT_REDIS_URL": redis.url}
        limits_seen: dict[int, tuple[float, float]] = {}
        with serve(url, workers=2, log=log, extra_env=env) as served:
            for connections in (64, 256):
                hot = _hot_row(args, url, connections)
                floor = _http_floor(args, served.base, connections)
                limits_seen[connections] = (hot, floor)
                rows.append(
                    Row(
                        f"limits: pgbench hot row / GET /healthz floor, {connections} in flight",
                        {"limit/s": hot, "attempts/s": floor},
                    )
                )
        print(table(rows), flush=True)
        rows += _postgres_admission(args, log, url, env, limits_seen)
    rows += _sqlite_admission(args, log)
    return rows


def changes_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """The flash sale with the change log on and off, taking turns in one run, and how far
    the feed trails the sale (bench/change_log.py)."""
    ensure_tool("wrk", "wrk")
    rows: list[Row] = []
    with postgres_and_redis() as (url, redis):
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
    with scratch_sqlite_database("bench") as url:
        ceiling = _sqlite_hot_row(args)
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
    return rows + _sqlite_admission(args, log)


def _sqlite_admission(args: argparse.Namespace, log: Path) -> list[Row]:
    """SQLite default (target: 1,000 holds/s over 2 processes), before and after."""
    with scratch_sqlite_database("admission") as url, private_redis() as redis:
        env = {"HEADCOUNT_REDIS_URL": redis.url}
        ceiling = (_sqlite_hot_row(args), "sqlite hot row")
        return _admission_rows(
            args, log, "SQLite, 2 processes", url, env, limit=ceiling, floor=None, conns=[64]
        )


def presence_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    ensure_tool("redis-benchmark", "redis-tools")
    rows: list[Row] = []
    with private_redis() as redis:
        redis_url = redis.url
        for clients in (64,):
            limit = _redis_admit_limit(args, redis_url, clients)
            joins, beats = (
                median_of(
                    args.reps, partial(rate, redis_url, clients=clients, seconds=args.seconds)
                )
                for rate in (presence_storm.engine_admit_rate, presence_storm.engine_heartbeat_rate)
            )
            for label, rate in (("joins", joins), ("heartbeats", beats)):
                rows.append(
                    Row(
                        f"presence engine (Redis), {label}, {clients} in flight",
                        {"ops/s": rate, "limit/s": limit, "ops/limit": round(rate / limit, 2)},
                    )
                )
                print(table(rows[-1:]), flush=True)
        with scratch_sqlite_database("viewers") as url:
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


def _redis_admit_limit(args: argparse.Namespace, redis_url: str, clients: int = 64) -> float:
    """redis-benchmark running the admission script: the presence engine's limit."""
    return median_of(
        args.reps,
        lambda: presence_storm.redis_benchmark_admit(redis_url, clients=clients, requests=200_000),
    )


def herd_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """The stream-start herd on one process (bench/herd.py), beside redis-benchmark running
    the admission script in the same run."""
    ensure_tool("redis-benchmark", "redis-tools")
    rows: list[Row] = []
    with private_redis() as redis:
        limit = _redis_admit_limit(args, redis.url)
        with herd.herd_server(redis.url, log) as served:
            viewers, cap = args.viewers, args.viewers * 4 // 5
            for within in (5.0, 2.0):
                runs = [
                    herd.ws_herd(served.base, served.pid, viewers=viewers, limit=cap, within=within)
                    for _ in range(args.reps)
                ]
                rows.append(
                    _herd_row(
                        f"WS herd: {viewers:,} viewers within {within:.0f} s, limit {cap:,}, 1 process",
                        runs,
                        limit,
                    )
                )
                print(table(rows[-1:]), flush=True)
            attendees = args.viewers * 2 // 5
            runs = [
                herd.http_herd(
                    served.base,
                    served.pid,
                    attendees=attendees,
                    limit=attendees * 4 // 5,
                    within=1.0,
                )
                for _ in range(args.reps)
            ]
            rows.append(
                _herd_row(
                    f"HTTP herd: {attendees:,} booth visits + room joins within 1 s, 1 process",
                    runs,
                    limit,
                )
            )
            print(table(rows[-1:]), flush=True)
    return rows


def _herd_row(label: str, runs: list[herd.HerdResult], limit: float) -> Row:
    rate = median([r.joins_per_s for r in runs])
    return Row(
        label,
        {
            "exact": "yes" if all(r.exact for r in runs) else "NO",
            "admitted": min(r.admitted for r in runs),
            "refused 4409/409": min(r.refused_4409 for r in runs),
            "other": "; ".join(f"{k}: {v}" for r in runs for k, v in r.other.items()) or "0",
            "server count": max(r.counted_by_server for r in runs),
            "offered/s": median([r.offered_per_s for r in runs]),
            "joins/s": rate,
            "p50 ms": median([r.p50_ms for r in runs]),
            "p99 ms": median([r.p99_ms for r in runs]),
            "max ms": max(r.max_ms for r in runs),
            "server cores": median([r.server_cores for r in runs]),
            "server CPU ms/join": median([r.server_cpu_ms for r in runs]),
            "redis-benchmark/s": limit,
            "joins/limit": round(rate / limit, 3) if limit else 0.0,
        },
    )


def cluster_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """`--leases` leases held by 4 processes on a 3+3 Redis Cluster and on one Redis, in
    the same run; then `--http-leases` of them through 4 `headcount serve` workers."""
    rows: list[Row] = []
    runs: list[tuple[str, str, cluster_leases.LeaseRun]] = []

    def record(path: str, store: str, run: cluster_leases.LeaseRun) -> None:
        runs.append((path, store, run))
        print(f"{path} on {store}: {run}", flush=True)  # kept if a later leg fails

    per = args.leases // args.booths
    http_per = args.http_leases // args.booths

    def legs(store: str, redis_url: str, master_of: Callable[[str], str] | None) -> None:
        engine = cluster_leases.engine_storm(
            redis_url,
            processes=args.processes,
            resources=args.booths,
            per_resource=per,
            master_of=master_of,
        )
        record("engine", store, engine)
        if not http_per:
            return
        # PostgreSQL, not SQLite: a join reads its booth in a transaction, and four
        # processes taking SQLite's write lock in turn would measure the file lock.
        with private_postgres() as server, scratch_postgres_database(server=server) as url:
            served = cluster_leases.lease_storm(
                url,
                redis_url=redis_url,
                log=log,
                processes=args.processes,
                booths=args.booths,
                per_booth=http_per,
                master_of=master_of,
            )
        record("HTTP", store, served)

    with private_redis_cluster() as cluster:
        master = {n.port: f":{n.port}" for n in cluster.masters()}
        legs("3+3 Redis Cluster", cluster.url, lambda tag: master[cluster.master_for(tag)])
    with private_redis() as redis:
        legs("one Redis", redis.url, None)
    single = {path: run.joins_per_s for path, store, run in runs if store == "one Redis"}
    for path, store, run in runs:
        rows.append(
            Row(
                f"{run.processes} processes ({path}), {run.booths} booths x {run.per_booth} "
                f"leases, {store}",
                {
                    "leases held": run.live,
                    "admitted": run.admitted,
                    "refused": run.refused,
                    "errors": run.failed,
                    "exact booths": f"{run.exact_booths}/{run.booths}",
                    "joins/s": run.joins_per_s,
                    "attempts/s": run.attempts_per_s,
                    "joins/s / one Redis": round(run.joins_per_s / single[path], 2),
                    "booths per master": ", ".join(
                        f"{name} {n}" for name, n in sorted(run.booths_per_master.items())
                    ),
                },
            )
        )
        print(table(rows[-1:]), flush=True)
    wrong = [f"{path} on {store}" for path, store, run in runs if not run.exact]
    if wrong:
        raise SystemExit(f"the counts are not exact: {wrong}")
    return rows


def queue_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """The waiting room with 100,000 queued: joins/s against the join script's own limit,
    memory per visitor, and position lookups at 1k/10k/100k (flat if O(log n))."""
    ensure_tool("redis-benchmark", "redis-tools")
    rows: list[Row] = []
    with private_redis() as redis:
        limit = median_of(
            args.reps,
            lambda: waiting_room.redis_benchmark_join(redis.url, clients=64, requests=200_000),
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
    """Commit → delivery through one `headcount relay` at fixed offered rates (the target:
    p99 < 1 s at 500 changes/s)."""
    rows: list[Row] = []
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    with private_postgres() as server, scratch_postgres_database(server=server) as url:
        for rate in rates:
            runs = [
                webhooks.commit_to_delivery(
                    url, log, rate=rate, seconds=max(10.0, args.seconds * 4)
                )
                for _ in range(args.reps)
            ]
            p99 = median([r.p99_ms for r in runs])
            complete = all(r.delivered == r.sent for r in runs)
            rows.append(
                Row(
                    f"webhooks: commit → delivery, {rate:g} changes/s offered over 8 events, "
                    "1 relay",
                    {
                        "committed/s": median([r.rate for r in runs]),
                        "delivered/s": median([r.delivered_per_s for r in runs]),
                        "HTTP floor req/s (8 ordered chains)": median(
                            [r.floor_per_s for r in runs]
                        ),
                        "floor round trip p50 ms": median([r.floor_trip_ms for r in runs]),
                        "delivered": min(r.delivered for r in runs),
                        "sent": min(r.sent for r in runs),
                        "p50 ms": median([r.p50_ms for r in runs]),
                        "p99 ms": p99,
                        "max ms": max(r.max_ms for r in runs),
                        "→ fanned out p50/p99 ms": "{:.0f} / {:.0f}".format(*runs[0].to_fan_out),
                        "→ delivered p50/p99 ms": "{:.0f} / {:.0f}".format(*runs[0].to_delivered),
                        "relay CPU ms/delivery": median([r.relay_cpu_ms for r in runs]),
                        "receiver CPU ms/delivery": median([r.receiver_cpu_ms for r in runs]),
                        "p99 < 1 s": "yes" if complete and p99 < 1000 else "no",
                        "load avg (1/5 min)": webhooks.load_average(),
                    },
                )
            )
            print(table(rows[-1:]), flush=True)
    return rows


def fanout_suite(args: argparse.Namespace, log: Path) -> list[Row]:
    """Capacity sockets watching one event: server CPU and snapshot reads per second."""
    with postgres_and_redis() as (url, redis):
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
        choices=[
            "tickets",
            "admission",
            "changes",
            "sqlite",
            "presence",
            "herd",
            "cluster",
            "queue",
            "webhooks",
            "fanout",
            "all",
        ],
        default="all",
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--rates", default="250,500,1000", help="webhooks: offered changes/s, comma-separated"
    )
    parser.add_argument("--viewers", type=int, default=5000, help="WebSocket viewers to hold")
    parser.add_argument("--watchers", type=int, default=10_000, help="capacity sockets to hold")
    parser.add_argument("--leases", type=int, default=50_000, help="leases held (cluster)")
    parser.add_argument("--booths", type=int, default=50, help="booths they spread over")
    parser.add_argument(
        "--http-leases", type=int, default=2_000, help="leases taken over HTTP (cluster)"
    )
    parser.add_argument("--processes", type=int, default=4, help="API processes (cluster)")
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
        "admission": admission_suite,
        "changes": changes_suite,
        "sqlite": sqlite_suite,
        "presence": presence_suite,
        "herd": herd_suite,
        "cluster": cluster_suite,
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
