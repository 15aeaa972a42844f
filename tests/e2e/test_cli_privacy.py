"""End-to-end runs of ``tailor report --dp-epsilon`` and ``tailor privacy ledger`` on a generated
shop: the page, the ε spent, the ledger, a refusal over the budget that spends nothing, and the
budget and bounds from tailor.toml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailor.cli import app


def tailor(*args: str | Path | float, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def tailor_json(*args: str | Path | float, env: dict[str, str] | None = None) -> dict:
    result = tailor(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_DP_BUDGET"):
            mp.delenv(name, raising=False)
        mp.chdir(tmp_path)
        yield


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    db = folder / "shop.duckdb"
    tailor_json("generate", folder / "files", "--db", db, "--customers", 60, "--items", 60,
                "--days", 70)  # fmt: skip
    return db


@pytest.fixture()
def db(generated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "shop.duckdb"
    copy.write_bytes(generated.read_bytes())
    return copy


def test_dp_report_spends_epsilon_and_the_ledger_shows_it(db, tmp_path):
    assert tailor_json("privacy", "ledger", "--db", db)["spent"] == 0
    result = tailor("report", "--output", tmp_path / "dp", "--dp-epsilon", 1.0, "--db", db)
    assert result.exit_code == 0, result.output
    assert "differentially private report written to" in result.stdout
    assert "ε = 1 spent, 1 of the budget of 3 in all, 2 left" in result.stdout
    page = (tmp_path / "dp" / "index.html").read_text(encoding="utf-8")
    assert "differentially private, ε = 0.5" in page
    assert "spent ε = 1 in all, of a budget of 3" in page

    data = tailor_json("report", "--output", tmp_path / "dp2", "--dp-epsilon", 0.5, "--db", db)
    assert data["epsilon"] == pytest.approx(0.5)
    assert data["spent"] == pytest.approx(1.5)
    assert data["figures"]["department_sales"]["scale"] == pytest.approx(40 * 25.0 / 0.25)
    assert {row["department"] for row in data["department_sales"]} >= {"(no department)"}

    ledger = tailor_json("privacy", "ledger", "--db", db)
    assert ledger["spent"] == pytest.approx(1.5)
    assert ledger["remaining"] == pytest.approx(1.5)
    assert [e["epsilon"] for e in ledger["entries"]] == pytest.approx([1.0, 0.5])
    assert {e["channel"] for e in ledger["entries"]} == {"cli"}
    table = tailor("privacy", "ledger", "--db", db)
    assert table.exit_code == 0 and "1.5 spent of 3" in table.stdout


def test_over_the_budget_is_refused_and_spends_nothing(db, tmp_path):
    env = {"TAILOR_DP_BUDGET": "1.5"}
    first = tailor("report", "--output", tmp_path / "a", "--dp-epsilon", 1.0, "--db", db, env=env)
    assert first.exit_code == 0, first.output
    refused = tailor("report", "--output", tmp_path / "b", "--dp-epsilon", 1.0, "--db", db, env=env)
    assert refused.exit_code == 1
    assert "refused: ε = 1 would bring the privacy loss" in refused.stderr
    assert "over its budget of 1.5 (1 spent); nothing was spent" in refused.stderr
    assert not (tmp_path / "b").exists()
    ledger = tailor_json("privacy", "ledger", "--db", db, env=env)
    assert ledger["spent"] == pytest.approx(1.0)
    assert len(ledger["entries"]) == 1
    assert ledger["remaining"] == pytest.approx(0.5)


def test_budget_and_bounds_from_tailor_toml(db, tmp_path):
    (tmp_path / "tailor.toml").write_text(
        "[privacy]\ndp_budget = 0.5\n[privacy.dp_bounds]\nmax_cells = 4\nmax_cell_spend = 10\n"
    )
    data = tailor_json("report", "--output", tmp_path / "dp", "--dp-epsilon", 0.5, "--db", db)
    assert data["bounds"]["max_cells"] == 4
    assert data["figures"]["department_sales"]["sensitivity"] == 40
    assert data["figures"]["department_sales"]["scale"] == pytest.approx(40 / 0.25)
    assert data["budget"] == 0.5 and data["remaining"] == pytest.approx(0)
    again = tailor("report", "--output", tmp_path / "dp", "--dp-epsilon", 0.1, "--db", db)
    assert again.exit_code == 1 and "The budget is spent" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--dp-epsilon", 0), "epsilon must be a positive number"),
        (("--dp-epsilon", "nan"), "epsilon must be a positive number"),
    ],
)
def test_bad_epsilon_is_one_line_and_spends_nothing(db, tmp_path, args, message):
    result = tailor("report", "--output", tmp_path / "dp", *args, "--db", db)
    assert result.exit_code == 1
    assert message in result.stderr
    assert tailor_json("privacy", "ledger", "--db", db)["entries"] == []


def test_unknown_bound_in_tailor_toml(db, tmp_path):
    (tmp_path / "tailor.toml").write_text("[privacy.dp_bounds]\nmax_spend = 10\n")
    result = tailor("report", "--output", tmp_path / "dp", "--dp-epsilon", 1, "--db", db)
    assert result.exit_code == 1
    assert "unknown bound(s) max_spend" in result.stderr
