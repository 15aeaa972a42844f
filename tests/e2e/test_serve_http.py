"""The HTTP API end to end: ``tailor serve`` as a real uvicorn server in a subprocess, spoken
to over real HTTP with httpx; a rebuild during traffic; a rebuild that fails; the server killed
(SIGKILL) while events pour in; a schemathesis run over the OpenAPI schema."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from tailor.cli import app as cli

MAX_EXAMPLES = int(os.environ.get("TAILOR_SCHEMATHESIS_EXAMPLES", "25"))
FAST = '[build]\nrecommenders = ["popularity", "personal_frequency"]\n'


def tailor_json(*args: str | Path | int, cwd: Path) -> dict:
    result = CliRunner().invoke(cli, [*map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``tailor serve`` in a subprocess, in ``folder`` (which holds tailor.toml)."""

    def __init__(self, folder: Path, db: Path) -> None:
        self.folder, self.db = folder, db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TAILOR_")}
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from tailor.cli import app; app()", "serve",
             "--db", str(db), "--port", str(self.port)],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(self.process.stdout.read().decode())
            try:
                if httpx.get(self.url + "/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("the server did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict]]:
    """(folder, warehouse, keys per role): a generated shop, built, with keys from the CLI."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_RECOMMENDERS", "TAILOR_CORS_ORIGINS"):
            mp.delenv(name, raising=False)
        folder = tmp_path_factory.mktemp("served")
        mp.chdir(folder)
        (folder / "tailor.toml").write_text(FAST)
        db = folder / "shop.duckdb"
        tailor_json("generate", folder / "files", "--db", db, "--customers", 60, "--items", 80,
                    "--days", 120, cwd=folder)  # fmt: skip
        tailor_json("build", "--db", db, cwd=folder)
        keys = {
            role: tailor_json("keys", "create", "--role", role, "--db", db, cwd=folder)
            for role in ("read", "write", "admin")
        }
        assert all(k["role"] == r and k["key"].startswith("tk_") for r, k in keys.items())
        yield folder, db, {role: {"X-API-Key": k["key"]} for role, k in keys.items()}


@pytest.fixture(scope="module")
def server(shop) -> Iterator[Server]:
    folder, db, _ = shop
    running = Server(folder, db)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def wait(http: httpx.Client, job: str, admin: dict) -> dict:
    for _ in range(1200):
        found = http.get(f"/v1/admin/rebuild/{job}", headers=admin).json()
        if found["status"] != "running":
            return found
        time.sleep(0.05)
    raise AssertionError("rebuild did not finish")


def test_the_warehouse_is_held_while_the_server_runs(shop, server):
    _, db, _ = shop
    result = CliRunner().invoke(cli, ["build", "--db", str(db)])
    assert result.exit_code == 1 and "cannot open the warehouse" in result.output


def test_every_endpoint_over_http(http, shop):
    keys = shop[2]
    read, write = keys["read"], keys["write"]
    health = http.get("/v1/health").json()
    assert health["status"] == "ok" and health["counts"]["customers"] == 60
    assert http.get("/docs").status_code == 200
    assert "/v1/events" in http.get("/openapi.json").json()["paths"]
    lists = http.get("/v1/customers/3/recommendations", params={"k": 5}, headers=read).json()
    assert len(lists["items"]) == 5 and all(i["reason"] for i in lists["items"])
    item = lists["items"][0]["item_id"]
    assert http.get(f"/v1/items/{item}/similar", headers=read).json()["items"]
    assert http.get(f"/v1/items/{item}/bundles", headers=read).status_code == 200
    assert http.get("/v1/items/nope/similar", headers=read).status_code == 404
    session = http.post("/v1/sessions/recommendations", json={"items": [item], "k": 3},
                        headers=read).json()  # fmt: skip
    assert len(session["items"]) == 3 and item not in [i["item_id"] for i in session["items"]]
    profile = http.get("/v1/customers/3", headers=read).json()
    assert profile["rfm_segment"] and profile["actions"] and profile["recent_purchases"]
    assert http.get("/v1/customers/nobody", headers=read).status_code == 404
    assert http.get("/v1/segments", headers=read).json()["rfm_segments"]
    assert http.get("/v1/segments").status_code == 401
    assert http.post("/v1/events", json={"customer_id": 3, "item_id": item},
                     headers=read).status_code == 403  # fmt: skip
    assert http.post("/v1/events", json={"customer_id": 3}, headers=write).status_code == 422
    assert http.post("/v1/admin/rebuild", headers=write).status_code == 403


def test_contract_a_posted_purchase_leaves_the_next_list(http, shop):
    read, write = shop[2]["read"], shop[2]["write"]
    url = "/v1/customers/9/recommendations"
    params = {"k": 10, "exclude_purchased": "true"}
    for _ in range(3):
        bought = http.get(url, params=params, headers=read).json()["items"][0]["item_id"]
        posted = http.post("/v1/events", json={"customer_id": 9, "item_id": bought},
                           headers=write)  # fmt: skip
        assert posted.status_code == 201
        after = http.get(url, params=params, headers=read).json()["items"]
        assert bought not in [i["item_id"] for i in after]


def test_hot_swap_during_traffic_and_a_failed_rebuild(http, shop):
    folder, _, keys = shop
    read, admin = keys["read"], keys["admin"]
    before = http.get("/v1/health").json()["build_id"]
    statuses: list[int] = []
    builds: set[str] = set()
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=30) as client:
            while not stop.is_set():
                r = client.get("/v1/customers/4/recommendations", headers=read)
                statuses.append(r.status_code)
                builds.add(r.json()["build_id"])

    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for w in workers:
        w.start()
    try:
        job = http.post("/v1/admin/rebuild", headers=admin)
        assert job.status_code == 202
        assert http.post("/v1/admin/rebuild", headers=admin).status_code == 409  # one at a time
        done = wait(http, job.json()["job_id"], admin)
        time.sleep(0.3)
    finally:
        stop.set()
        for w in workers:
            w.join()
    assert done["status"] == "succeeded", done
    assert len(statuses) > 20 and set(statuses) == {200}
    assert builds == {before, done["build_id"]}
    assert http.get("/v1/health").json()["build_id"] == done["build_id"]

    # A rebuild that fails (settings naming a recommender that does not exist) changes nothing.
    (folder / "tailor.toml").write_text('[build]\nrecommenders = ["no_such_model"]\n')
    try:
        failed = wait(http, http.post("/v1/admin/rebuild", headers=admin).json()["job_id"], admin)
    finally:
        (folder / "tailor.toml").write_text(FAST)
    assert failed["status"] == "failed" and "no_such_model" in failed["error"]
    assert http.get("/v1/health").json()["build_id"] == done["build_id"]
    assert http.get("/v1/customers/4/recommendations", headers=read).status_code == 200


def test_every_acknowledged_event_survives_a_sigkill(shop, tmp_path):
    folder, db, keys = shop
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)  # the module's server holds the original; keys are copied with it
    shutil.copytree(db.with_name("shop.builds"), tmp_path / "copy.builds")
    (tmp_path / "tailor.toml").write_text(FAST)
    server = Server(tmp_path, copy)
    acknowledged: list[str] = []
    lock = threading.Lock()

    def post(worker: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for n in range(100_000):
                ids = [f"w{worker}-{n}-{i}" for i in range(5)]
                batch = [{"customer_id": n % 60 + 1, "item_id": 100001 + i, "event_id": e,
                          "event_type": "view"} for i, e in enumerate(ids)]  # fmt: skip
                try:
                    response = client.post("/v1/events", json=batch, headers=keys["write"])
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 201:
                    with lock:
                        acknowledged.extend(ids)

    with ThreadPoolExecutor(4) as pool:
        for w in range(4):
            pool.submit(post, w)
        deadline = time.monotonic() + 20
        while len(acknowledged) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
    assert len(acknowledged) >= 500
    with duckdb.connect(str(copy)) as con:  # replays the write-ahead log
        stored = {r[0] for r in con.execute("SELECT event_id FROM events").fetchall()}
    assert set(acknowledged) <= stored
    restarted = Server(tmp_path, copy)  # and the server comes back on it
    try:
        assert httpx.get(restarted.url + "/v1/health").json()["status"] == "ok"
    finally:
        restarted.stop()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(server, shop):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    schema = schema.exclude(path_regex="^/v1/admin/rebuild$")  # a build per example: too slow
    headers = shop[2]["admin"]
    failures = []
    calls = []

    for operation in schema.get_all_operations():
        op = operation.ok()

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=op.as_strategy())
        def run(case) -> None:
            response = case.call(headers=headers, timeout=30)
            calls.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, case.body, response.text))

        run()
    assert not failures, failures[:3]
    assert len(calls) > 100 and 422 in calls and 200 in calls
