"""Encryption at rest: the warehouse (DuckDB's AES-GCM), build files (tailor.privacy.crypto),
where keys come from (tailor.privacy.keys), and encrypting an existing warehouse."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tailor.build import build, builds_dir, current_build, load_dataset, load_recommender
from tailor.config import load_settings
from tailor.errors import ConfigError, EncryptionError, WarehouseError
from tailor.privacy import crypto, keys
from tailor.privacy.crypto import (
    MAGIC,
    NONCE_BYTES,
    build_file_name,
    encrypt_existing,
    read_build_file,
    write_build_file,
)
from tailor.store import Warehouse, ingest_files

KEY = "correct horse battery staple"
OTHER_KEY = "another key, just as long"
MARKER = "PLAINTEXT-MARKER-7f3a"
EVENTS = (
    "customer_id,item_id,timestamp,title\n"
    f"C1,{MARKER}-item,2024-01-01 10:00:00,{MARKER}\n"
    "C2,I2,2024-01-02 11:00:00,plain\n"
)
KEY_ENV = ("TAILOR_ENCRYPTION_KEY", "TAILOR_ENCRYPTION_KEY_FILE", "TAILOR_CONFIG")


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key from the environment or a tailor.toml unless a test sets one."""
    for name in KEY_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def with_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", KEY)


def warehouse_file(folder: Path, key: str | None) -> Path:
    """A closed warehouse holding EVENTS (MARKER among its values)."""
    folder.mkdir(exist_ok=True)
    (folder / "e.csv").write_text(EVENTS)
    path = folder / "shop.duckdb"
    with Warehouse(path, encryption_key=key) as wh:
        ingest_files(wh, "events", [folder / "e.csv"])
    return path


# -- the warehouse ------------------------------------------------------------------------------


def test_an_encrypted_warehouse_holds_no_plaintext_a_plain_one_does(tmp_path: Path):
    plain = warehouse_file(tmp_path / "plain", None)
    encrypted = warehouse_file(tmp_path / "encrypted", KEY)
    assert MARKER.encode() in plain.read_bytes()
    assert MARKER.encode() not in encrypted.read_bytes()
    assert not Path(str(encrypted) + ".wal").exists()  # everything is in the file
    with Warehouse(encrypted, read_only=True, encryption_key=KEY) as wh:
        assert wh.encrypted
        assert wh.stats()["events"] == 2
        titles = wh.con.execute("SELECT title FROM events ORDER BY title").fetchall()
        assert titles == [(MARKER,), ("plain",)]
    # DuckDB's own encryption: DuckDB alone opens it with the same key.
    con = duckdb.connect()
    con.execute(f"ATTACH '{encrypted}' AS w (ENCRYPTION_KEY '{KEY}', READ_ONLY)")
    assert con.execute("SELECT count(*) FROM w.events").fetchone() == (2,)
    row = con.execute("SELECT encrypted, cipher FROM duckdb_databases() WHERE database_name = 'w'")
    assert row.fetchone() == (True, "GCM")
    con.close()


@pytest.mark.parametrize("read_only", [True, False])
def test_opening_with_no_key_another_key_or_a_key_for_a_plain_file_fails_clearly(
    tmp_path: Path, read_only: bool
):
    encrypted = warehouse_file(tmp_path / "encrypted", KEY)
    plain = warehouse_file(tmp_path / "plain", None)
    with pytest.raises(WarehouseError, match="the warehouse is encrypted; set TAILOR_ENCRYPTION"):
        Warehouse(encrypted, read_only=read_only)
    with pytest.raises(WarehouseError, match="key set is not this warehouse's key") as wrong:
        Warehouse(encrypted, read_only=read_only, encryption_key=OTHER_KEY)
    assert OTHER_KEY not in str(wrong.value)
    with pytest.raises(WarehouseError, match="not encrypted, but an encryption key is set"):
        Warehouse(plain, read_only=read_only, encryption_key=KEY)


def test_a_key_with_quotes_works(tmp_path: Path):
    key = "it's a 'quoted' key; DROP TABLE events"
    path = warehouse_file(tmp_path, key)
    with Warehouse(path, read_only=True, encryption_key=key) as wh:
        assert wh.stats()["events"] == 2


def test_cursors_and_copies_of_an_encrypted_warehouse(tmp_path: Path):
    path = warehouse_file(tmp_path, KEY)
    with Warehouse(path, encryption_key=KEY) as wh:
        view = wh.cursor()  # another thread's: it must see the warehouse, not the memory catalog
        assert view.con.execute("SELECT count(*) FROM events").fetchone() == (2,)
        view.close()
        wh.copy_to(tmp_path / "copy.duckdb")  # encrypted as the warehouse is
        wh.rewrite()  # the erasure's fresh file stays encrypted
        assert wh.stats()["events"] == 2
    assert MARKER.encode() not in path.read_bytes()
    copy = tmp_path / "copy.duckdb"
    assert MARKER.encode() not in copy.read_bytes()
    with Warehouse(copy, read_only=True, encryption_key=KEY) as wh:
        assert wh.stats()["events"] == 2


# -- build files --------------------------------------------------------------------------------


def test_build_file_name_is_the_path_inside_the_build(tmp_path: Path):
    builds = tmp_path / "shop.builds"
    assert build_file_name(builds / "20240630T120000123456Z" / "manifest.json") == "manifest.json"
    staged = builds / ".20240630T120000123456Z.partial" / "recommenders" / "ease.pkl"
    assert build_file_name(staged) == "recommenders/ease.pkl"  # the same once published
    assert build_file_name(tmp_path / "model.pkl") == "model.pkl"


def test_build_files_round_trip_encrypted_and_match_the_documented_format(
    tmp_path: Path, with_key: None
):
    folder = tmp_path / "20240630T120000123456Z" / "customers"
    folder.mkdir(parents=True)
    path = folder / "summary.json"
    data = json.dumps({"customer": MARKER}).encode()
    write_build_file(path, data)
    blob = path.read_bytes()
    assert blob.startswith(MAGIC) and MARKER.encode() not in blob
    assert read_build_file(path) == data
    # By hand, as the module docstring says: HKDF-SHA256 of the secret (info "tailor build
    # files"), AES-256-GCM, the path inside the build as associated data.
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"tailor build files").derive(KEY.encode())
    nonce = blob[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    body = blob[len(MAGIC) + NONCE_BYTES :]
    assert AESGCM(key).decrypt(nonce, body, MAGIC + b"customers/summary.json") == data
    # A fresh nonce for every write.
    write_build_file(path, data)
    assert path.read_bytes()[len(MAGIC) : len(MAGIC) + NONCE_BYTES] != nonce


def test_a_changed_moved_or_unkeyed_build_file_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_key: None
):
    build_folder = tmp_path / "20240630T120000123456Z"
    build_folder.mkdir()
    path = build_folder / "opt_outs.parquet"
    write_build_file(path, b"some bytes of a build file")
    blob = bytearray(path.read_bytes())
    blob[-20] ^= 1
    (build_folder / "tampered.parquet").write_bytes(blob)
    moved = build_folder / "rules.parquet"  # the same bytes under another name
    moved.write_bytes(path.read_bytes())
    for bad in ("tampered.parquet", "rules.parquet"):
        with pytest.raises(EncryptionError, match="cannot be decrypted with the key of"):
            read_build_file(build_folder / bad)
    (build_folder / "short.parquet").write_bytes(MAGIC + b"123")
    with pytest.raises(EncryptionError, match="cannot be decrypted"):
        read_build_file(build_folder / "short.parquet")
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", OTHER_KEY)
    with pytest.raises(EncryptionError, match="another key, or the file was changed"):
        read_build_file(path)
    monkeypatch.delenv("TAILOR_ENCRYPTION_KEY")
    with pytest.raises(EncryptionError, match="the build is encrypted; set TAILOR_ENCRYPTION_KEY"):
        read_build_file(path)
    # A plain file is not read while a key is set: it could be a pickle put there by anyone.
    (build_folder / "plain.pkl").write_bytes(b"not encrypted")
    assert read_build_file(build_folder / "plain.pkl") == b"not encrypted"
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", KEY)
    with pytest.raises(EncryptionError, match="not encrypted, but an encryption key is set"):
        read_build_file(build_folder / "plain.pkl")


def test_large_files_are_encrypted_in_pieces(tmp_path: Path, with_key: None, monkeypatch):
    monkeypatch.setattr(crypto, "CHUNK_BYTES", 1000)
    data = os.urandom(10_500)
    path = tmp_path / "big.bin"
    write_build_file(path, data)
    assert read_build_file(path) == data


def test_a_build_of_an_encrypted_warehouse_is_encrypted_throughout(
    tmp_path: Path, synthetic_db: Path, monkeypatch: pytest.MonkeyPatch
):
    encrypted_db = tmp_path / "shop.duckdb"
    recommenders = ["popularity", "recency_frequency"]
    with Warehouse(synthetic_db, read_only=True) as wh:
        wh.copy_to(encrypted_db, KEY)
        plain = build(wh, tmp_path / "plain.builds", recommenders=recommenders)
    customers = load_dataset(plain).customer_ids[:5]
    expected = load_recommender(plain).recommend(customers, k=5)
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", KEY)
    with Warehouse(encrypted_db, read_only=True, encryption_key=KEY) as wh:
        info = build(wh, builds_dir(encrypted_db), recommenders=recommenders)
    files = [p for p in info.path.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "dataset.pkl", "opt_outs.parquet"}
    assert all(p.read_bytes().startswith(MAGIC) for p in files)
    assert not any(p.name.startswith(".") for p in files)  # no partial file left behind
    # Read back through the same functions as ever: the same lists as the plain build's.
    again = current_build(builds_dir(encrypted_db))
    chosen, expected_choice = again.manifest["recommenders"], plain.manifest["recommenders"]
    assert chosen["default"] == expected_choice["default"]
    for name in recommenders:  # the same figures (timings aside)
        assert (
            chosen["validation"][name]["ndcg@20"] == expected_choice["validation"][name]["ndcg@20"]
        )
    pd.testing.assert_frame_equal(load_recommender(again).recommend(customers, k=5), expected)


def test_encrypt_existing_encrypts_the_warehouse_and_its_builds(tmp_path: Path):
    db = warehouse_file(tmp_path, None)
    builds = builds_dir(db)
    build_folder = builds / "20240630T120000123456Z"
    build_folder.mkdir(parents=True)
    write_build_file(build_folder / "manifest.json", json.dumps({"marker": MARKER}).encode())
    (builds / "CURRENT").write_text(build_folder.name)
    secret = keys.Secret(KEY.encode(), "the test")
    done = encrypt_existing(db, secret)
    assert done == {"warehouse": str(db), "build_files": 1}
    assert MARKER.encode() not in db.read_bytes()
    assert (build_folder / "manifest.json").read_bytes().startswith(MAGIC)
    assert (builds / "CURRENT").read_text() == build_folder.name  # a pointer, no data
    with Warehouse(db, read_only=True, encryption_key=KEY) as wh:
        assert wh.stats()["events"] == 2
    with keys.use_settings(load_settings()), pytest.MonkeyPatch.context() as mp:
        mp.setenv("TAILOR_ENCRYPTION_KEY", KEY)
        assert current_build(builds).manifest == {"marker": MARKER}
    with pytest.raises(EncryptionError, match="encrypted already"):
        encrypt_existing(db, secret)
    with pytest.raises(WarehouseError, match="not this warehouse's key"):
        encrypt_existing(db, keys.Secret(OTHER_KEY.encode(), "the test"))


# -- keys ---------------------------------------------------------------------------------------


def test_keys_come_from_the_environment_a_key_file_or_tailor_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    assert keys.encryption_secret() is None
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tailor.key").write_text(KEY + "\n")
    config = tmp_path / "tailor.toml"
    config.write_text('[privacy]\nencryption_key_file = "secrets/tailor.key"\n')
    found = keys.encryption_secret()
    assert found.value == KEY.encode()  # without the file's newline
    assert "tailor.toml" in found.source and KEY not in repr(found)
    # A relative key file is read from tailor.toml's folder, wherever Tailor runs.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert keys.encryption_secret(load_settings(config=config)).value == KEY.encode()
    assert keys.encryption_secret() is None  # no tailor.toml here
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY_FILE", str(tmp_path / "secrets" / "tailor.key"))
    assert keys.encryption_secret().source.startswith("key file")
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", OTHER_KEY)
    with pytest.raises(ConfigError, match="not both"):
        keys.encryption_secret()
    monkeypatch.delenv("TAILOR_ENCRYPTION_KEY_FILE")
    secret = keys.encryption_secret(load_settings(config=config))  # the environment first
    assert secret.value == OTHER_KEY.encode() and secret.source == "$TAILOR_ENCRYPTION_KEY"
    # Settings made active (as a command does) are what calls without settings read.
    monkeypatch.delenv("TAILOR_ENCRYPTION_KEY")
    with keys.use_settings(load_settings(config=config)):
        assert keys.encryption_secret().value == KEY.encode()
    assert keys.encryption_secret() is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [("short", "at least 16 characters"), ("", "at least 16 characters")],
)
def test_a_weak_key_is_refused(monkeypatch: pytest.MonkeyPatch, value: str, reason: str):
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY", value)
    with pytest.raises(ConfigError, match=reason):
        keys.encryption_secret()


def test_a_missing_key_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TAILOR_ENCRYPTION_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(ConfigError, match="cannot read the key file"):
        keys.encryption_secret()
    (tmp_path / "tailor.toml").write_text("[privacy]\nencryption_key_file = 3\n")
    with pytest.raises(ConfigError, match="encryption_key_file must be a file name"):
        load_settings()


def test_derived_keys_differ_by_purpose():
    secret = keys.Secret(KEY.encode(), "the test")
    assert secret.derive("build files") != secret.derive("something else")
    assert len(secret.derive("build files")) == 32
