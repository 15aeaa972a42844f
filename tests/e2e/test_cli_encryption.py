"""Encryption at rest end to end: `tailor ingest`, `build`, `recommend`, `stats` and `encrypt`
with the key from the environment or a key file named in tailor.toml, and the HTTP API over an
encrypted warehouse; the same answers as without encryption, and no plaintext on disk."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tailor.cli import app
from tailor.privacy.crypto import MAGIC
from tailor.serve import ServeSettings, create_app
from tailor.serve.auth import create_key
from tailor.store import Warehouse

KEY = "an encryption key for the tests"
FAST = "popularity,recency_frequency"


def tailor(*args: str | Path | int, key: str | None = None):
    env = {"TAILOR_ENCRYPTION_KEY": key}  # None: unset for the call
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def tailor_json(*args: str | Path | int, key: str | None = None):
    result = tailor(*args, "--json", key=key)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ingest_all(files: Path, db: Path, key: str | None) -> None:
    """Every generated file through `tailor ingest`, as a user would load them."""
    for path in sorted(files.glob("*.csv")):
        tailor_json("ingest", path.stem.replace("_", "-"), path, "--db", db, key=key)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with a generated shop's files, a plain warehouse and an encrypted one (each
    ingested with `tailor ingest` and built), the current directory while the tests run."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_ENCRYPTION_KEY_FILE"):
            mp.delenv(name, raising=False)
        mp.setenv("TAILOR_RECOMMENDERS", FAST)
        folder = tmp_path_factory.mktemp("shop")
        mp.chdir(folder)
        tailor_json("generate", "files", "--customers", 60, "--items", 80, "--days", 120)
        for db, key in (("plain.duckdb", None), ("encrypted.duckdb", KEY)):
            ingest_all(folder / "files", folder / db, key)
            tailor_json("build", "--db", db, key=key)
        yield folder


def on_disk(folder: Path, db: str) -> list[Path]:
    """The warehouse file and every file of its builds."""
    path = folder / db
    builds = path.with_name(path.stem + ".builds")
    return [path, *(p for p in builds.rglob("*") if p.is_file() and p.name != "CURRENT")]


def test_the_encrypted_warehouse_and_build_hold_no_plaintext(shop: Path):
    items = pd.read_csv(shop / "files" / "items.csv")
    title = max(items["title"].astype(str), key=len).encode()
    assert title in (shop / "plain.duckdb").read_bytes()
    files = on_disk(shop, "encrypted.duckdb")
    assert len(files) > 10
    for path in files:
        assert title not in path.read_bytes(), path
    assert all(p.read_bytes().startswith(MAGIC) for p in files[1:])


def test_the_same_answers_with_and_without_encryption(shop: Path):
    customer = pd.read_csv(shop / "files" / "events.csv")["customer_id"].iloc[0]
    plain = tailor_json("recommend", "--db", "plain.duckdb", "--customer", customer, "--k", 5)
    encrypted = tailor_json(
        "recommend", "--db", "encrypted.duckdb", "--customer", customer, "--k", 5, key=KEY
    )
    assert [r["item_id"] for r in encrypted] == [r["item_id"] for r in plain]
    assert len(plain) == 5
    stats = tailor_json("stats", "--db", "encrypted.duckdb", key=KEY)
    assert stats == tailor_json("stats", "--db", "plain.duckdb")


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "encrypted.duckdb: the warehouse is encrypted; set TAILOR_ENCRYPTION_KEY"),
        ("not the key, but long enough", "the encryption key set is not this warehouse's key"),
        ("short", "at least 16 characters"),
    ],
)
def test_no_key_or_another_key_is_one_clear_line_and_exit_1(
    shop: Path, key: str | None, message: str
):
    for args in (("stats",), ("recommend", "--customer", "1"), ("customers",)):
        result = tailor(*args, "--db", "encrypted.duckdb", key=key)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ")
        assert len(result.stderr.strip().splitlines()) == 1
        if args[0] == "stats" or key == "short":
            assert message in result.stderr
        else:  # build files: their own words
            assert "encrypted" in result.stderr or "another key" in result.stderr
        assert "Traceback" not in result.output


def test_the_key_is_never_an_option(shop: Path):
    result = tailor("stats", "--db", "encrypted.duckdb", "--encryption-key", KEY)
    assert result.exit_code == 2  # no such option


def test_tailor_encrypt_a_plain_warehouse_with_a_key_file(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    plain = shop / "plain.duckdb"
    customer = pd.read_csv(shop / "files" / "events.csv")["customer_id"].iloc[0]
    expected = tailor_json("recommend", "--db", plain, "--customer", customer, "--k", 5)
    stats = tailor_json("stats", "--db", plain)
    refused = tailor("encrypt", "--db", plain)
    assert refused.exit_code == 1
    assert "no encryption key: set TAILOR_ENCRYPTION_KEY" in refused.stderr
    folder = tmp_path / "converted"
    folder.mkdir()
    shutil.copyfile(plain, folder / "shop.duckdb")
    shutil.copytree(shop / "plain.builds", folder / "shop.builds")
    (folder / "secret.key").write_text(KEY + "\n")
    config = folder / "tailor.toml"
    config.write_text('db = "shop.duckdb"\n[privacy]\nencryption_key_file = "secret.key"\n')
    monkeypatch.chdir(folder)
    done = tailor_json("encrypt", "--config", config)
    n_files = len([p for p in (folder / "shop.builds").rglob("*") if p.is_file()]) - 1
    assert done == {"warehouse": "shop.duckdb", "build_files": n_files}
    for path in on_disk(folder, "shop.duckdb")[1:]:
        assert path.read_bytes().startswith(MAGIC)
    lists = tailor_json("recommend", "--config", config, "--customer", customer, "--k", 5)
    assert lists == expected
    assert tailor_json("stats", "--config", config) == stats
    again = tailor("encrypt", "--config", config)
    assert again.exit_code == 1 and "encrypted already" in again.stderr


def test_the_http_api_serves_an_encrypted_warehouse(
    shop: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copyfile(shop / "encrypted.duckdb", folder / "shop.duckdb")
    shutil.copytree(shop / "encrypted.builds", folder / "shop.builds")
    db = folder / "shop.duckdb"
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", KEY)
    with Warehouse(db, encryption_key=KEY) as wh:
        admin = create_key(wh, "admin")
    customer = pd.read_csv(shop / "files" / "events.csv")["customer_id"].iloc[0]
    with TestClient(create_app(ServeSettings.resolve(db))) as client:
        headers = {"X-API-Key": admin}
        got = client.get(f"/v1/customers/{customer}/recommendations?k=5", headers=headers)
        assert got.status_code == 200, got.text
        event = {"customer_id": str(customer), "item_id": "1", "timestamp": "2030-01-01T00:00:00"}
        assert client.post("/v1/events", json=event, headers=headers).status_code == 201
        job = client.post("/v1/admin/rebuild", headers=headers).json()
        for _ in range(600):
            status = client.get(f"/v1/admin/rebuild/{job['job_id']}", headers=headers).json()
            if status["status"] != "running":
                break
            time.sleep(0.1)
        assert status["status"] == "succeeded", status
    for path in on_disk(folder, "shop.duckdb")[1:]:
        assert path.read_bytes().startswith(MAGIC), path
    with Warehouse(db, read_only=True, encryption_key=KEY) as wh:
        assert wh.con.execute("SELECT count(*) FROM events WHERE item_id = 1").fetchone()[0] >= 1


def test_forget_keeps_the_warehouse_and_the_build_encrypted(shop: Path):
    customer = pd.read_csv(shop / "files" / "events.csv")["customer_id"].iloc[-1]
    erased = tailor_json("forget", customer, "--db", "encrypted.duckdb", key=KEY)
    assert erased["held"] is True and erased["warehouse_rows"]["events"] > 0
    files = on_disk(shop, "encrypted.duckdb")
    assert all(p.read_bytes().startswith(MAGIC) for p in files[1:] if p.suffix != ".tmp")
    assert tailor("stats", "--db", "encrypted.duckdb").exit_code == 1  # still needs the key
    theirs = tailor_json(
        "recommend", "--db", "encrypted.duckdb", "--customer", customer, "--k", 5, key=KEY
    )
    stranger = tailor_json(
        "recommend", "--db", "encrypted.duckdb", "--customer", "nobody", "--k", 5, key=KEY
    )
    assert [r["item_id"] for r in theirs] == [r["item_id"] for r in stranger]
