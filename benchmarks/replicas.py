"""Replicas over one Postgres against one SQLite process, with a replica SIGKILLed half-way.

Rows: one `thinkrag serve` on SQLite (the baseline), then 1, 2 and 4 replicas sharing a
throwaway Postgres (`testing/postgres.py`). Each row starts `--runs` runs at once, spread
round-robin over the replicas (what a proxy does), and follows each on the replica that
took it. In the multi-replica rows replica 0 is SIGKILLed half-way (at half the SQLite
row's median run time); a client whose stream broke rejoins on a live replica with
Last-Event-ID. Every run's event numbers are checked: lost and duplicated events are
counted (they must be 0). Failover is the time from the SIGKILL to the moment a client
sees the survivor's `run_resumed` event for a run the dead replica held (lease expiry,
claim, resume from the checkpoint).

    python benchmarks/replicas.py [--runs 200] [--latency 0.01] [--lease 2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import free_port, passages, pct, start_model

from serving.http.postgres_store import PostgresStore
from serving.http.run_store import Store
from serving.http.sqlite_store import SqliteStore
from testing.postgres import TemporaryPostgres

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Run:
    run_id: str = ""
    first: float = 0.0
    done: float = 0.0
    seqs: list[int] = dataclasses.field(default_factory=list)
    last: str = ""
    resumed_after: float | None = None  # seconds from the kill to its run_resumed event


@dataclasses.dataclass
class Cluster:
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    killed_at: float | None = None

    def live(self, i: int) -> str:
        """The i-th live replica's URL (skipping the killed one)."""
        alive = [u for u, p in zip(self.urls, self.procs, strict=True) if p.poll() is None]
        return alive[i % len(alive)]


async def follow(client: httpx.AsyncClient, cluster: Cluster, i: int, t0: float) -> Run:
    run = Run()
    url = cluster.urls[i % len(cluster.urls)]
    for attempt in range(5):  # a run sent just as its replica died goes to another
        try:
            made = await client.post(url + "/v1/runs", json={"question": "capital of Freedonia?"})
            break
        except httpx.HTTPError:
            url = cluster.live(i + attempt + 1)
    run_id = run.run_id = made.json()["run_id"]
    kind = ""
    for attempt in range(20):
        headers = {"Last-Event-ID": str(run.seqs[-1])} if run.seqs else {}
        try:
            async with client.stream(
                "GET", f"{url}/v1/runs/{run_id}/events", headers=headers
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        run.first = run.first or time.perf_counter() - t0
                        run.seqs.append(int(line[4:]))
                    elif line.startswith("event: end"):
                        run.done = time.perf_counter() - t0
                        run.last = kind
                        return run
                    elif line.startswith("event: "):
                        kind = line[7:]
                        if kind == "run_resumed" and cluster.killed_at is not None:
                            # the survivor took the run over and continues it now
                            run.resumed_after = time.perf_counter() - cluster.killed_at
        except httpx.HTTPError:
            pass
        # The replica died under us: rejoin on a live one.
        url = cluster.live(i + attempt + 1)
        await asyncio.sleep(0.05)
    run.last = "gave up"
    return run


async def drive(cluster: Cluster, n: int, kill_after: float | None) -> tuple[list[Run], float]:
    limits = httpx.Limits(max_connections=2 * n + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(follow(client, cluster, i, t0)) for i in range(n)]
        if kill_after is not None:
            await asyncio.sleep(kill_after)
            cluster.killed_at = time.perf_counter()
            cluster.procs[0].send_signal(signal.SIGKILL)
        runs = await asyncio.gather(*tasks)
        return list(runs), time.perf_counter() - t0


def start_cluster(config: dict[str, object], n: int, tmp: Path, log: object) -> Cluster:
    path = tmp / f"c{n}-{time.monotonic_ns()}.toml"
    path.write_text("\n".join(f"{k} = {json.dumps(v)}" for k, v in config.items()))
    urls, procs = [], []
    for _ in range(n):
        port = free_port()
        urls.append(f"http://127.0.0.1:{port}")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "serving",
                    "--config",
                    str(path),
                    "--port",
                    str(port),
                    "--skip-model-check",
                ],
                cwd=REPO,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
                stderr=log,
            )
        )
    for url in urls:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            time.sleep(0.1)
    return Cluster(urls, procs)


def stop(cluster: Cluster) -> None:
    for proc in cluster.procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in cluster.procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(15)


def summarize(runs: list[Run], wall: float, store: Store) -> dict[str, float]:
    """Lost: events the store holds for a run (of the kinds this stream sends) that its
    client never got; duplicated: events the client got more than once."""
    lost = dup = 0
    for run in runs:
        dup += len(run.seqs) - len(set(run.seqs))
        rows = store.events_after(run.run_id, 0, limit=100_000)
        stored = {e.seq for e in rows if e.kind in ("agent", "service")}  # not LangGraph's
        lost += len(stored - set(run.seqs))
    finished = sum(1 for r in runs if r.last == "run_finished")
    failover = [r.resumed_after for r in runs if r.resumed_after is not None]
    firsts, dones = [r.first for r in runs], [r.done for r in runs]
    return {
        "finished": finished, "lost": lost, "dup": dup,
        "first_p50": pct(firsts, 0.5), "first_p99": pct(firsts, 0.99),
        "done_p50": pct(dones, 0.5), "done_p99": pct(dones, 0.99),
        "runs_s": finished / wall, "wall": wall, "cut": len(failover),
        "failover_p50": pct(failover, 0.5) if failover else 0.0,
        "failover_max": max(failover) if failover else 0.0,
        "other": sum(Counter(r.last for r in runs if r.last != "run_finished").values()),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200, help="concurrent runs per row")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds per model chunk")
    parser.add_argument("--lease", type=float, default=2.0, help="THINKRAG_LEASE_SECONDS")
    parser.add_argument("--replicas", default="1,2,4", help="Postgres rows, comma-separated")
    args = parser.parse_args()
    model_proc, model_url = start_model(args.latency)
    rows: list[tuple[str, dict[str, float]]] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with (tmp / "p.jsonl").open("w") as fh:
            for p in passages():
                fh.write(json.dumps(dataclasses.asdict(p)) + "\n")
        log = stack.enter_context(open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w"))
        n = args.runs
        base = {
            "memory_passages": str(tmp / "p.jsonl"), "model_url": model_url,
            "model_name": "scripted", "top_k": 2, "max_active_runs": n, "max_queued_runs": n,
            "max_runs_per_key": n, "max_active_runs_per_key": n,
            "requests_per_minute": 10_000_000, "lease_seconds": args.lease,
        }  # fmt: skip
        plan: list[tuple[str, dict[str, object], int]] = [
            ("sqlite x1", {**base, "db_path": str(tmp / "s.db")}, 1)
        ]
        postgres = stack.enter_context(TemporaryPostgres())
        for count in (int(x) for x in args.replicas.split(",")):
            config = {**base, "database_url": postgres.database()}
            plan.append((f"postgres x{count}", config, count))
        try:
            for label, config, count in plan:
                cluster = start_cluster(config, count, tmp, log)
                try:
                    # Half-way: half the single SQLite process's median run time.
                    half = rows[0][1]["done_p50"] / 2 if rows and count > 1 else None
                    runs, wall = asyncio.run(drive(cluster, n, half))
                finally:
                    stop(cluster)
                url = config.get("database_url")
                store = PostgresStore(str(url)) if url else SqliteStore(tmp / "s.db")
                try:
                    stats = summarize(runs, wall, store)
                finally:
                    store.close()
                rows.append((label + (" (1 killed)" if count > 1 else ""), stats))
                print(f"  {label}: {wall:.1f} s", file=sys.stderr)
        finally:
            if model_proc.stdin is not None:
                model_proc.stdin.close()
            model_proc.wait(10)
    report(args, rows)


def report(args: argparse.Namespace, rows: list[tuple[str, dict[str, float]]]) -> None:
    base = rows[0][1]["runs_s"] or 1.0
    print(
        f"\n{args.runs} concurrent runs per row, scripted model ({args.latency * 1000:.0f} ms per"
        f" chunk), lease {args.lease:g} s; multi-replica rows SIGKILL replica 0 half-way\n"
    )
    print(
        "| setup | finished | lost | dup | first event p50 / p99 | done p50 / p99 | runs/s |"
        " vs SQLite x1 | cut off | failover p50 / max |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, s in rows:
        failover = f"{s['failover_p50']:.2f} / {s['failover_max']:.2f} s" if s["cut"] else "-"
        print(
            f"| {label} | {s['finished']:.0f}/{args.runs} | {s['lost']:.0f} | {s['dup']:.0f} |"
            f" {s['first_p50']:.2f} / {s['first_p99']:.2f} s | {s['done_p50']:.2f} /"
            f" {s['done_p99']:.2f} s | {s['runs_s']:.1f} | {s['runs_s'] / base:.2f}x |"
            f" {s['cut']:.0f} | {failover} |"
        )


if __name__ == "__main__":
    main()
