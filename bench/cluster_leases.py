"""Leases held across a Redis Cluster by several API processes, counted exactly.

`headcount serve --workers 4` (four processes, one port) in front of a private 3-master,
3-replica cluster: booths spread over the cluster's slots, each with a visitor limit, are
joined by more people than fit, all at once over keep-alive connections. Every booth must
admit exactly its limit (the 201s, the distinct lease ids and the live count the capacity
snapshot reads back from the cluster all agree), and the leases stay held together (TTL
longer than the run). The same run against one private Redis gives the rate beside it:
the cluster's cost (or gain) is measured on the same machine in the same minute.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.servers import serve
from headcount.config import Settings
from headcount.domain.identity import Role
from headcount.tokens import mint

ORGANIZER = "org-bench-cluster"
# Joins in flight at once, over this many keep-alive connections (spread by the kernel
# over the workers that share the port).
IN_FLIGHT = 256
CONNECTIONS = 128


@dataclass(frozen=True, slots=True)
class LeaseRun:
    processes: int
    booths: int
    per_booth: int
    attempts: int
    admitted: int
    refused: int
    failed: int
    live: int  # the sum of the booths' live counts, read back after the storm
    exact_booths: int  # booths whose 201s, lease ids and live count all equal the limit
    seconds: float
    booths_per_master: dict[str, int]

    @property
    def joins_per_s(self) -> float:
        return self.admitted / self.seconds

    @property
    def attempts_per_s(self) -> float:
        return self.attempts / self.seconds

    @property
    def exact(self) -> bool:
        return (
            self.exact_booths == self.booths
            and self.admitted == self.live == self.booths * self.per_booth
            and self.failed == 0
        )


def _auth(sub: str, settings: Settings, role: Role = Role.ATTENDEE) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(settings, sub, role)}"}


async def _storm(
    base: str, *, booths: int, per_booth: int, extra: float
) -> tuple[list[int], dict[str, list[httpx.Response]], float, int]:
    settings = Settings()
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:
        org = _auth(ORGANIZER, settings, Role.ORGANIZER)
        made = await http.post("/api/v1/events", json={"name": "Cluster leases"}, headers=org)
        made.raise_for_status()
        event_id = made.json()["id"]
        ids: list[str] = []
        for n in range(booths):
            booth = await http.post(
                f"/api/v1/events/{event_id}/booths",
                json={"name": f"Booth {n}", "max_visitors": per_booth},
                headers=org,
            )
            booth.raise_for_status()
            ids.append(booth.json()["id"])
        tries = per_booth + max(1, round(per_booth * extra))
        plan = [(booth_id, f"v-{b}-{i}") for i in range(tries) for b, booth_id in enumerate(ids)]
        headers = {holder: _auth(holder, settings) for _, holder in plan}  # before the clock
        answers: dict[str, list[httpx.Response]] = {booth_id: [] for booth_id in ids}
        gate = asyncio.Semaphore(IN_FLIGHT)
        failed = 0

        async def join(booth_id: str, holder: str) -> None:
            nonlocal failed
            async with gate:
                try:
                    answer = await http.post(
                        f"/api/v1/booths/{booth_id}/visits", headers=headers[holder]
                    )
                except httpx.HTTPError:
                    failed += 1
                    return
            answers[booth_id].append(answer)

        start = time.perf_counter()
        await asyncio.gather(*(join(booth_id, holder) for booth_id, holder in plan))
        seconds = time.perf_counter() - start
        snapshot = (await http.get(f"/api/v1/events/{event_id}/capacity")).json()
        live: dict[str, int] = {b["id"]: int(b["visitors"]) for b in snapshot["booths"]}
        return [live.get(booth_id, -1) for booth_id in ids], answers, seconds, failed


def lease_storm(
    database_url: str,
    *,
    redis_url: str,
    log: Path,
    processes: int,
    booths: int,
    per_booth: int,
    extra: float = 0.05,
    master_of: Callable[[str], str] | None = None,
) -> LeaseRun:
    """`booths` x `per_booth` leases taken through `processes` workers on `redis_url`.

    `master_of` names the master that owns a presence hash tag (cluster runs), to show
    the leases really are spread over the cluster.
    """
    env = {
        "HEADCOUNT_REDIS_URL": redis_url,
        "HEADCOUNT_REDIS_KEY_PREFIX": f"hcb{secrets.token_hex(3)}",
        # Held for the whole run without heartbeats: every lease is live at the end.
        "HEADCOUNT_PRESENCE_TTL": "1800",
    }
    with serve(database_url, workers=processes, log=log, extra_env=env) as served:
        live, answers, seconds, failed = asyncio.run(
            _storm(served.base, booths=booths, per_booth=per_booth, extra=extra)
        )
    admitted = refused = exact = 0
    for found, count in zip(answers.values(), live, strict=True):
        statuses = Counter(a.status_code for a in found)
        leases = {a.json()["lease_id"] for a in found if a.status_code == 201}
        admitted += statuses[201]
        refused += statuses[409]
        if statuses[201] == len(leases) == count == per_booth and set(statuses) <= {201, 409}:
            exact += 1
    spread = Counter(
        master_of(f"{{booth.{booth_id}}}") if master_of else "one Redis" for booth_id in answers
    )
    return LeaseRun(
        processes=processes,
        booths=booths,
        per_booth=per_booth,
        attempts=sum(len(found) for found in answers.values()) + failed,
        admitted=admitted,
        refused=refused,
        failed=failed,
        live=sum(live),
        exact_booths=exact,
        seconds=seconds,
        booths_per_master=dict(spread),
    )


# The engine path: the same admission script, taken by N OS processes without HTTP.


@dataclass(frozen=True, slots=True)
class _Share:
    admitted: dict[str, list[str]]  # resource id → lease ids this process was given
    refused: dict[str, int]
    errors: int
    started: float
    ended: float


@dataclass(frozen=True, slots=True)
class _Job:
    url: str
    prefix: str
    worker: int
    workers: int
    resources: list[str]
    tries: int
    limit: int
    start_at: float  # wall clock: every process starts together


def _engine_share(job: _Job) -> _Share:
    """One process's part of the storm: every `workers`-th attempt, all in flight at once
    (bounded), each a real admission against `limit`."""
    from headcount.presence.base import Resource
    from headcount.presence.redis import RedisPresence

    async def run() -> _Share:
        # A connection per admission in flight: the pool is not what is measured.
        engine = RedisPresence(job.url, prefix=job.prefix, max_connections=IN_FLIGHT)
        plan = [(rid, f"h-{rid}-{i}") for i in range(job.tries) for rid in job.resources]
        plan = plan[job.worker :: job.workers]
        admitted: dict[str, list[str]] = {rid: [] for rid in job.resources}
        refused: Counter[str] = Counter()
        errors = 0
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def one(rid: str, holder: str) -> None:
            nonlocal errors
            async with gate:
                try:
                    got = await engine.admit(
                        Resource("booth", rid), holder, limit=job.limit, ttl=1800.0
                    )
                except Exception as exc:  # counted, and the first one shown
                    errors += 1
                    if errors == 1:
                        print(f"process {job.worker}: {exc!r}", flush=True)
                    return
            if got.lease is None:
                refused[rid] += 1
            else:
                admitted[rid].append(got.lease.lease_id)

        await engine.ping()
        await asyncio.sleep(max(0.0, job.start_at - time.time()))
        started = time.perf_counter()
        await asyncio.gather(*(one(rid, holder) for rid, holder in plan))
        ended = time.perf_counter()
        await engine.close()
        return _Share(admitted, dict(refused), errors, started, ended)

    return asyncio.run(run())


def engine_storm(
    redis_url: str,
    *,
    processes: int,
    resources: int,
    per_resource: int,
    extra: float = 0.05,
    master_of: Callable[[str], str] | None = None,
) -> LeaseRun:
    """`resources` x `per_resource` leases taken by `processes` OS processes running the
    presence engine (what an API process runs for a join, without the HTTP around it)."""
    from concurrent.futures import ProcessPoolExecutor

    from headcount.presence.base import Resource
    from headcount.presence.redis import RedisPresence

    prefix = f"hcb{secrets.token_hex(3)}"
    ids = [f"bth_{secrets.token_hex(6)}" for _ in range(resources)]
    tries = per_resource + max(1, round(per_resource * extra))
    start_at = time.time() + 3.0 + processes  # after every process has connected
    with ProcessPoolExecutor(processes) as pool:
        jobs = [
            _Job(redis_url, prefix, w, processes, ids, tries, per_resource, start_at)
            for w in range(processes)
        ]
        shares = list(pool.map(_engine_share, jobs))

    async def live_counts() -> dict[Resource, int]:
        engine = RedisPresence(redis_url, prefix=prefix)
        try:
            return await engine.occupancies([Resource("booth", rid) for rid in ids])
        finally:
            await engine.close()

    live = asyncio.run(live_counts())
    exact = 0
    admitted = refused = 0
    for rid in ids:
        leases = [lease for share in shares for lease in share.admitted[rid]]
        admitted += len(leases)
        refused += sum(share.refused.get(rid, 0) for share in shares)
        if len(leases) == len(set(leases)) == live[Resource("booth", rid)] == per_resource:
            exact += 1
    spread = Counter(master_of(f"{{booth.{rid}}}") if master_of else "one Redis" for rid in ids)
    errors = sum(share.errors for share in shares)
    return LeaseRun(
        processes=processes,
        booths=resources,
        per_booth=per_resource,
        attempts=admitted + refused + errors,
        admitted=admitted,
        refused=refused,
        failed=errors,
        live=sum(live.values()),
        exact_booths=exact,
        seconds=max(s.ended for s in shares) - min(s.started for s in shares),
        booths_per_master=dict(spread),
    )
