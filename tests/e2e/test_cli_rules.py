"""End-to-end runs of ``tailor rules`` and ``tailor bundles`` on a small generated shop, in-process
with Typer's CliRunner; the answers are checked against the baskets counted with plain SQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app

QUICK = {"TAILOR_RECOMMENDERS": "recency_frequency"}
RULE_KEYS = ["antecedents", "consequents", "support", "confidence", "lift"]
BUNDLE_KEYS = ["item_id", "rank", "bundle_item_id", "support", "confidence", "lift", "reason"]


def tailor(*args: str | Path | float):
    return CliRunner().invoke(app, [str(a) for a in args], env=QUICK)


def tailor_json(*args: str | Path | float):
    result = tailor(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module", autouse=True)
def in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_RECOMMENDERS"):
            mp.delenv(name, raising=False)
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    db = folder / "shop.duckdb"
    tailor_json("generate", folder / "files", "--db", db, "--customers", 60, "--items", 80,
                "--days", 120)  # fmt: skip
    manifest = tailor_json("build", "--db", db)
    assert manifest["rules"]["count"] > 0 and "rules" in manifest["steps"]
    return db


@pytest.fixture(scope="module")
def pairs(db: Path) -> pd.DataFrame:
    """Baskets of each pair of items bought together, and of each item, by SQL."""
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(
            """
            WITH bought AS (
                SELECT DISTINCT customer_id, basket_id, item_id FROM events
                WHERE event_type = 'purchase'),
            n AS (SELECT count(DISTINCT (customer_id, basket_id)) AS baskets FROM bought),
            single AS (SELECT item_id, count(*) AS c FROM bought GROUP BY item_id)
            SELECT a.item_id AS antecedent, b.item_id AS consequent, count(*) AS together,
                   any_value(sa.c) AS antecedent_count, any_value(sb.c) AS consequent_count,
                   any_value(n.baskets) AS baskets
            FROM bought a JOIN bought b USING (customer_id, basket_id)
            JOIN single sa ON sa.item_id = a.item_id JOIN single sb ON sb.item_id = b.item_id,
            n WHERE a.item_id <> b.item_id GROUP BY ALL
            """
        ).df()


def test_rules_match_sql(db: Path, pairs: pd.DataFrame):
    rules = tailor_json("rules", "--db", db, "--min-support", 0.01)
    assert rules and all(list(r) == RULE_KEYS for r in rules)
    expected = pairs.loc[pairs["together"] >= 0.01 * pairs["baskets"]]
    got = {(r["antecedents"][0], r["consequents"][0]): r for r in rules}
    assert set(got) == set(zip(expected["antecedent"], expected["consequent"], strict=True))
    for row in expected.itertuples():
        rule = got[(row.antecedent, row.consequent)]
        assert rule["support"] == pytest.approx(row.together / row.baskets)
        assert rule["confidence"] == pytest.approx(row.together / row.antecedent_count)
        assert rule["lift"] == pytest.approx(
            row.together * row.baskets / (row.antecedent_count * row.consequent_count)
        )
    lifts = [r["lift"] for r in rules]
    assert lifts == sorted(lifts, reverse=True)


def test_rules_thresholds_and_output(db: Path, tmp_path: Path):
    default = tailor_json("rules", "--db", db)
    # Below the build's min_support the rules are counted again from the build's dataset.
    looser = tailor_json("rules", "--db", db, "--min-support", 0.0001)
    stricter = tailor_json("rules", "--db", db, "--min-support", 0.02, "--min-confidence", 0.2)
    assert len(looser) >= len(default) > len(stricter) > 0
    assert all(r["support"] >= 0.02 and r["confidence"] >= 0.2 for r in stricter)
    result = tailor("rules", "--db", db, "--min-support", 0.02, "--min-confidence", 0.2,
                    "--output", tmp_path / "rules.csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "rules.csv")
    assert list(written.columns) == RULE_KEYS and len(written) == len(stricter)
    assert written["antecedents"].tolist() == [r["antecedents"][0] for r in stricter]
    result = tailor("rules", "--db", db, "--output", tmp_path / "rules.parquet")
    assert result.exit_code == 0, result.output
    stored = pd.read_parquet(tmp_path / "rules.parquet")
    assert [list(ids) for ids in stored["consequents"]] == [r["consequents"] for r in default]
    assert tailor("rules", "--db", db).exit_code == 0  # the Rich table
    bad = tailor("rules", "--db", db, "--min-support", 2)
    assert bad.exit_code == 1 and "min_support" in bad.stderr


def test_bundles(db: Path, pairs: pd.DataFrame):
    top = pairs.sort_values("together", ascending=False).iloc[0]
    item = int(top["antecedent"])
    bundles = tailor_json("bundles", item, "--db", db, "--k", 3)
    assert 0 < len(bundles) <= 3
    assert all(list(b) == BUNDLE_KEYS for b in bundles)
    assert [b["rank"] for b in bundles] == list(range(1, len(bundles) + 1))
    assert {b["item_id"] for b in bundles} == {item}
    mine = pairs.loc[pairs["antecedent"] == item].set_index("consequent")
    for b in bundles:
        together = int(mine.loc[b["bundle_item_id"], "together"])
        assert b["reason"] == f"bought together in {together} baskets (lift {b['lift']:.1f})"
    lifts = [b["lift"] for b in bundles]
    assert lifts == sorted(lifts, reverse=True)
    assert tailor("bundles", item, "--db", db).exit_code == 0  # the Rich table


def test_bundles_of_an_unknown_item(db: Path):
    result = tailor("bundles", "no-such-item", "--db", db)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: unknown item 'no-such-item'"


def test_rules_with_triples_hold_the_pairs_and_their_own_counts(db: Path, pairs: pd.DataFrame):
    rules = tailor_json("rules", "--db", db, "--min-support", 0.005, "--max-len", 3)
    sizes = [len(r["antecedents"]) + len(r["consequents"]) for r in rules]
    assert set(sizes) == {2, 3}
    only_pairs = tailor_json("rules", "--db", db, "--min-support", 0.005)

    def keyed(found: list[dict]) -> dict:
        return {(tuple(r["antecedents"]), tuple(r["consequents"])): r["support"] for r in found}

    assert keyed([r for r, n in zip(rules, sizes, strict=True) if n == 2]) == keyed(only_pairs)
    with duckdb.connect(str(db), read_only=True) as con:
        baskets = con.execute(
            "SELECT count(DISTINCT (customer_id, basket_id)) FROM events "
            "WHERE event_type = 'purchase'"
        ).fetchone()[0]
        for rule in [r for r, n in zip(rules, sizes, strict=True) if n == 3][:5]:
            items = [*rule["antecedents"], *rule["consequents"]]
            together = con.execute(
                "SELECT count(*) FROM (SELECT customer_id, basket_id FROM events "
                "WHERE event_type = 'purchase' AND item_id IN (SELECT unnest($1)) "
                "GROUP BY ALL HAVING count(DISTINCT item_id) = 3)",
                [items],
            ).fetchone()[0]
            assert rule["support"] == pytest.approx(together / baskets)
