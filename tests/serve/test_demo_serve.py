"""``tailor demo`` ends by serving the dashboard: the app it would serve, with the read key it
prints, lets a visitor log in (uvicorn.run is replaced, so nothing listens)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tailor import cli
from tailor.config import load_settings


def test_the_demo_serves_the_dashboard_with_a_printed_read_key(
    shop: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    served = {}

    def run(app, host: str, port: int, log_level: str) -> None:
        served.update(app=app, host=host, port=port)

    monkeypatch.setattr("uvicorn.run", run)
    cli._serve_demo(load_settings(shop, None), 8123)
    printed = capsys.readouterr().out
    key = re.search(r"read key (\S+);", printed).group(1)
    assert served["host"] == "127.0.0.1" and served["port"] == 8123
    assert "http://127.0.0.1:8123/" in printed
    with TestClient(served["app"]) as client:
        assert client.get("/", follow_redirects=False).status_code in (302, 303, 307)
        login = client.post("/login", data={"key": key}, follow_redirects=False)
        assert login.status_code in (302, 303)
        assert client.get("/").status_code == 200
        assert client.get("/v1/health").status_code == 200


def test_no_serving_outside_a_terminal(shop: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli, "_serve_demo", lambda *a: pytest.fail("served outside a terminal"))
    # CliRunner's streams are not terminals: the default is not to serve (run_demo itself is
    # replaced: the demo's loading is tested in tests/e2e/test_demo.py).
    from tailor import demo

    class Result:
        db, reports, ingest_seconds, stats = shop, [], 0.0, {}

        class build:  # noqa: N801
            build_id, path, manifest = "b", shop, {"dataset": {}}

    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: Result)
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, ["demo", "--db", str(shop), "--json"])
    assert result.exit_code == 0, result.output
