"""The HTTP API under load: a recommendation endpoint next to a trivial one, and events in.

    python benchmarks/serve.py                       # a generated shop, built, in a temp folder
    python benchmarks/serve.py --db shop.duckdb      # a copy of a built warehouse (never changed)
    python benchmarks/serve.py --seconds 10 --events-seconds 10 --json

* ``recommendations vs trivial``: ``GET /v1/customers/{id}/recommendations?k=10`` for random
  known customers, and a trivial endpoint (``GET /v1/bench/noop``: the same API-key check,
  returns a constant) mounted on the same app, served by the same uvicorn process with the same
  settings as ``tailor serve``. Each is loaded for ``--seconds`` by ``--connections`` concurrent
  keep-alive connections from an asyncio httpx load generator in a separate process; the two
  runs alternate (trivial, recommendations, trivial, recommendations) and the figures are the
  medians. Targets: ratio of requests/s >= 0.7, recommendation p99 <= 50 ms, no errors.
* ``events``: ``POST /v1/events``, one event per request (``--events-per-request N`` posts lists
  of N), each event with its own event_id, from
  ``--event-connections`` concurrent clients for ``--events-seconds`` (the server commits
  the events waiting at once together); afterwards the server is stopped and the events in
  the warehouse are counted. Targets: >= 500 events/s sustained, count in warehouse == count
  accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _harness as h

HERE = Path(__file__).resolve()


# -- the server (a child process) ---------------------------------------------------------------


def run_server(db: Path, port: int) -> None:
    import uvicorn
    from fastapi import APIRouter

    from tailor.serve import ServeSettings, create_app
    from tailor.serve.deps import Reader

    app = create_app(ServeSettings.resolve(db))
    bench = APIRouter(dependencies=[Reader])

    @bench.get("/v1/bench/noop")
    def noop() -> dict:
        return {"ok": True}

    app.include_router(bench)
    # The settings `tailor serve` runs with.
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the load generator (another child process) --------------------------------------------------


async def _load(url: str, paths: list[str], key: str, seconds: float, connections: int,
                method: str) -> dict:  # fmt: skip
    import httpx

    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = n
        while time.perf_counter() < deadline:
            path = paths[i % len(paths)]
            i += connections
            started = time.perf_counter()
            try:
                if method == "GET":
                    r = await client.get(path)
                else:
                    r = await client.post("/v1/events", content=path)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code >= 300:
                errors += 1

    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as c:
        started = time.perf_counter()
        await asyncio.gather(*(worker(n, c) for n in range(connections)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "ok": sum(n for s, n in statuses.items() if s < 300),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
    }


def run_load() -> None:
    args = json.loads(sys.stdin.read())
    result = asyncio.run(_load(**args))
    print(json.dumps(result))


# -- the parent -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE), *args])


def load(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE), "--load"], input=json.dumps(spec),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def prepare(folder: Path, source: Path | None, customers: int, items: int) -> Path:
    """A built warehouse in ``folder``: a copy of ``source`` and its builds, or a new shop."""
    db = folder / "shop.duckdb"
    if source is not None:
        shutil.copy(source, db)
        shutil.copytree(source.with_name(source.stem + ".builds"), folder / "shop.builds")
        return db
    env = {**os.environ, "TAILOR_RECOMMENDERS": "popularity,personal_frequency,recency_frequency"}
    tailor = [sys.executable, "-c", "from tailor.cli import app; app()"]
    subprocess.run([*tailor, "generate", str(folder / "files"), "--db", str(db), "--customers",
                    str(customers), "--items", str(items), "--json"],
                   check=True, env=env, capture_output=True)  # fmt: skip
    subprocess.run([*tailor, "build", "--db", str(db), "--json"], check=True, env=env,
                   capture_output=True)  # fmt: skip
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="A built warehouse to copy (default: generate).")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--events-seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--event-connections", type=int, default=64)
    parser.add_argument(
        "--events-per-request", type=int, default=1,
        help="Events in each POST body (1: one object; more: a list).",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--server", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.server:
        return run_server(Path(args.server[0]), int(args.server[1]))
    if args.load:
        return run_load()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = prepare(folder, args.db, args.customers, args.items)
        import duckdb

        from tailor.serve.auth import create_key
        from tailor.store import Warehouse

        with Warehouse(db) as wh:
            key = create_key(wh, "write")
            ids = [r[0] for r in wh.con.execute(
                "SELECT DISTINCT customer_id FROM events ORDER BY 1").fetchall()]  # fmt: skip
            items = [r[0] for r in wh.con.execute(
                "SELECT DISTINCT item_id FROM events ORDER BY 1 LIMIT 500").fetchall()]  # fmt: skip
            before = wh.con.execute("SELECT count(*) FROM events").fetchone()[0]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = child("--server", str(db), str(port))
        try:
            import httpx

            for _ in range(600):
                try:
                    httpx.get(url + "/v1/health", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            rec_paths = [f"/v1/customers/{c}/recommendations?k=10" for c in ids]
            common = {"url": url, "key": key, "connections": args.connections, "method": "GET"}
            load({**common, "paths": rec_paths, "seconds": 3})  # warm-up
            runs: dict[str, list[dict]] = {"trivial": [], "recommendations": []}
            for _ in range(2):
                runs["trivial"].append(
                    load({**common, "paths": ["/v1/bench/noop"], "seconds": args.seconds})
                )
                runs["recommendations"].append(
                    load({**common, "paths": rec_paths, "seconds": args.seconds})
                )
            n = max(1, int(args.events_seconds * 2000))
            per = args.events_per_request

            def event(i: int) -> dict:
                return {"customer_id": ids[i % len(ids)], "item_id": items[i % len(items)],
                        "event_type": "view", "event_id": f"bench-{i}"}  # fmt: skip

            bodies = [
                json.dumps(event(i) if per == 1 else [event(i * per + j) for j in range(per)])
                for i in range(n)
            ]
            events = load({**common, "method": "POST", "paths": bodies,
                           "connections": args.event_connections,
                           "seconds": args.events_seconds})  # fmt: skip
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
        with duckdb.connect(str(db), read_only=True) as con:
            stored = con.execute(
                "SELECT count(*) FROM events WHERE event_id LIKE 'bench-%'"
            ).fetchone()[0]
            after = con.execute("SELECT count(*) FROM events").fetchone()[0]

    def median(name: str, field: str) -> float:
        return statistics.median(r[field] for r in runs[name])

    ratio = median("recommendations", "rps") / median("trivial", "rps")
    result = {
        "machine": h.machine(),
        "shop": str(args.db) if args.db else f"generated: {args.customers} customers, "
        f"{args.items} items",
        "connections": args.connections,
        "event_connections": args.event_connections,
        "runs": runs,
        "ratio": round(ratio, 3),
        "events_per_request": args.events_per_request,
        "events": {**events, "events_per_second": events["rps"] * args.events_per_request,
                   "stored": stored, "accepted": events["ok"] * args.events_per_request,
                   "table_grew_by": after - before},
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"machine: {result['machine']}")
    print(f"shop: {result['shop']}; {args.connections} connections")
    for name in runs:
        rps = [r["rps"] for r in runs[name]]
        print(f"{name}: {median(name, 'rps'):.0f} req/s (runs {rps}), p50 "
              f"{median(name, 'p50_ms')} ms, p99 {median(name, 'p99_ms')} ms, errors "
              f"{sum(r['errors'] for r in runs[name])}")  # fmt: skip
    print(f"ratio: {ratio:.2f}")
    e = result["events"]
    print(f"events ({args.events_per_request} per request): {e['events_per_second']:.0f}/s "
          f"over {e['seconds']} s, accepted {e['accepted']}, stored "
          f"{e['stored']}, errors {e['errors']}, p99 {e['p99_ms']} ms")  # fmt: skip


if __name__ == "__main__":
    main()
