"""End-to-end runs of ``tailor build``, ``recommend``, ``similar`` and ``evaluate`` on a small
generated shop, in-process with Typer's CliRunner; answers are checked against the warehouse
with plain SQL and against ``tailor.evaluate.metrics``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from tailor.build import builds_dir, current_build, load_dataset_arrays, load_recommender
from tailor.cli import app
from tailor.evaluate.metrics import RANKING_METRICS, ranking_metrics
from tailor.recommend import RECOMMEND_COLUMNS, REGISTRY

K = 10
MODEL_KEYS = {
    *(f"{m}@{K}" for m in RANKING_METRICS),
    "coverage", "diversity", "novelty", f"repeat_recall@{K}", f"explore_recall@{K}",
    "customers", "fit_seconds", "recommend_seconds", "ci95", "segments",
}  # fmt: skip
# The net interaction weight of a (customer, item) in SQL: the default weights of
# tailor.dataset.DEFAULT_WEIGHTS times log2(1 + quantity), quantity floored at 1 (the generated
# shop has no ratings, whose latest value would count instead).
NET_WEIGHT = """sum(CASE event_type WHEN 'purchase' THEN 1 WHEN 'cart' THEN 0.5 WHEN 'view'
    THEN 0.1 WHEN 'return' THEN -1 ELSE 0 END * log2(1 + greatest(coalesce(quantity, 1), 1)))"""


def tailor(*args: str | Path | int, env: dict[str, str] | None = None):
    """Run the CLI in-process; returns click's Result (exit_code, stdout, stderr)."""
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def tailor_json(*args: str | Path | int, env: dict[str, str] | None = None):
    result = tailor(*args, "--json", env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def sql(db: Path, query: str, *params) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


@pytest.fixture(scope="module", autouse=True)
def in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run in a fresh folder with no Tailor settings from the environment."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("TAILOR_DB", "TAILOR_CONFIG", "TAILOR_RECOMMENDERS"):
            mp.delenv(name, raising=False)
        mp.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop (60 customers, 80 items, 120 days) ingested by `tailor generate`."""
    folder = tmp_path_factory.mktemp("shop")
    db = folder / "shop.duckdb"
    tailor_json("generate", folder / "files", "--db", db, "--customers", 60, "--items", 80,
                "--days", 120)  # fmt: skip
    return db


@pytest.fixture(scope="module")
def manifest(db: Path) -> dict:
    """The manifest of `tailor build` over every recommender (hybrid included)."""
    return tailor_json("build", "--db", db)


@pytest.fixture(scope="module")
def history(db: Path, manifest: dict) -> dict:
    """customer id -> the item ids of their positive interactions, from the build's arrays."""
    interactions, customers, items = load_dataset_arrays(current_build(builds_dir(db)))
    coo = interactions.tocoo()
    pairs = pd.DataFrame({"customer": customers[coo.row], "item": items[coo.col]})
    return pairs.groupby("customer")["item"].apply(set).to_dict()


@pytest.fixture(scope="module")
def evaluation(db: Path) -> dict:
    return tailor_json("evaluate", "--db", db, "--split", "temporal", "--test-days", 28,
                       "--k", K)  # fmt: skip


def by_customer(rows: list[dict]) -> dict:
    lists: dict = {}
    for row in rows:
        lists.setdefault(row["customer_id"], []).append(row)
    return lists


# -- build --------------------------------------------------------------------------------------


def test_build_publishes_the_recommenders_and_their_validation(manifest: dict):
    selection = manifest["recommenders"]
    assert set(selection["validation"]) == set(REGISTRY)
    assert selection["k"] == 20
    best = max(selection["validation"], key=lambda n: selection["validation"][n]["ndcg@20"])
    assert selection["default"] == best
    assert manifest["dataset"]["customers"] == 60 and manifest["dataset"]["items"] == 80


# -- recommend ----------------------------------------------------------------------------------


def test_recommend_one_customer(db: Path, manifest: dict, history: dict):
    customer = sorted(history)[0]
    rows = tailor_json("recommend", "--db", db, "--customer", customer, "--k", 5)
    assert len(rows) == 5
    assert all(list(row) == RECOMMEND_COLUMNS for row in rows)
    assert [row["rank"] for row in rows] == [1, 2, 3, 4, 5]
    assert all(row["customer_id"] == customer for row in rows)  # an int, as the ids are
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    assert all(isinstance(row["reason"], str) and row["reason"] for row in rows)
    # The build's default model, loaded as the library loads it, gives the same list.
    model = load_recommender(current_build(builds_dir(db)))
    assert model.name == manifest["recommenders"]["default"]
    expected = model.recommend([customer], k=5)
    assert [row["item_id"] for row in rows] == expected["item_id"].tolist()


def test_recommend_all_to_csv(db: Path, manifest: dict, history: dict):
    result = tailor("recommend", "--db", db, "--all", "--output", "out.csv")
    assert result.exit_code == 0, result.output
    assert "600 recommendations written to out.csv" in result.stdout
    frame = pd.read_csv("out.csv")
    assert list(frame.columns) == ["customer_id", "rank", "item_id", "score", "reason"]
    assert frame.groupby("customer_id").size().to_dict() == {
        c: K for c in load_dataset_arrays(current_build(builds_dir(db)))[1]
    }
    ranks = frame.groupby("customer_id")["rank"].apply(list)
    assert all(listed == list(range(1, K + 1)) for listed in ranks)


def test_recommend_exclude_purchased(db: Path, manifest: dict, history: dict):
    rows = tailor_json("recommend", "--db", db, "--all", "--exclude-purchased", "--model",
                       "personal_frequency")  # fmt: skip
    assert len(rows) == 60 * K
    assert not any(row["item_id"] in history.get(row["customer_id"], ()) for row in rows)
    # Without the flag the same model puts each customer's own items first.
    lists = by_customer(tailor_json("recommend", "--db", db, "--all", "--model",
                                    "personal_frequency"))  # fmt: skip
    assert all(lists[c][0]["item_id"] in items for c, items in history.items())


def test_recommend_with_popularity(db: Path, manifest: dict):
    lists = by_customer(tailor_json("recommend", "--db", db, "--all", "--k", 5, "--model",
                                    "popularity"))  # fmt: skip
    items = [[row["item_id"] for row in rows] for rows in lists.values()]
    assert all(listed == items[0] for listed in items)  # the same list for everyone
    # The list by hand: distinct customers with a positive event in the 28 days before the last
    # event, ties broken by all-time customers, then by item id.
    expected = sql(
        db,
        """WITH cut AS (SELECT max(timestamp) - INTERVAL 28 DAY AS start FROM events),
        buyers AS (
            SELECT item_id, count(DISTINCT customer_id) FILTER (WHERE timestamp >= start) AS now,
                count(DISTINCT customer_id) AS ever
            FROM events, cut WHERE event_type IN ('purchase', 'view', 'cart') GROUP BY item_id)
        SELECT item_id, now FROM buyers ORDER BY now DESC, ever DESC, item_id LIMIT 5""",
    )
    assert items[0] == [item for item, _ in expected]
    reasons = [row["reason"] for row in next(iter(lists.values()))]
    assert reasons == [f"popular: bought by {n} customers in the last 28 days" for _, n in expected]


def test_recommend_needs_customers_or_all(db: Path, manifest: dict):
    for args in ([], ["--all", "--customer", "1"]):
        result = tailor("recommend", "--db", db, *args)
        assert result.exit_code == 1
        assert result.stderr == "error: name customers with --customer ID, or pass --all\n"
    result = tailor("recommend", "--db", db, "--all", "--model", "nope")
    assert result.exit_code == 1
    assert "has no recommender 'nope'" in result.stderr and result.stderr.count("\n") == 1


def test_recommend_before_any_build(tmp_path: Path):
    fresh = tmp_path / "fresh.duckdb"
    tailor_json("generate", tmp_path / "files", "--db", fresh, "--customers", 5, "--items", 30,
                "--days", 10)  # fmt: skip
    result = tailor("recommend", "--db", fresh, "--customer", 1)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "no build yet; run `tailor build`" in result.stderr


# -- similar ------------------------------------------------------------------------------------


def test_similar_items(db: Path, manifest: dict):
    (item,) = sql(db, "SELECT item_id FROM events GROUP BY 1 ORDER BY count(*) DESC LIMIT 1")[0]
    rows = tailor_json("similar", str(item), "--db", db, "--k", 5)
    assert len(rows) == 5
    assert all(list(row) == ["item_id", "rank", "similar_item_id", "score", "reason"]
               for row in rows)  # fmt: skip
    assert all(row["item_id"] == item and row["similar_item_id"] != item for row in rows)
    assert [row["rank"] for row in rows] == [1, 2, 3, 4, 5]
    scores = [row["score"] for row in rows]
    assert scores == sorted(scores, reverse=True)
    # The count in each reason: customers whose interactions with both items weigh > 0.
    for row in rows:
        ((both,),) = sql(
            db,
            f"""WITH kept AS (SELECT customer_id, item_id FROM events GROUP BY 1, 2
                HAVING {NET_WEIGHT} > 0)
            SELECT count(*) FROM kept a JOIN kept b USING (customer_id)
            WHERE a.item_id = ? AND b.item_id = ?""",
            item,
            row["similar_item_id"],
        )
        noun = "customer" if both == 1 else "customers"
        assert row["reason"] == f"{both} {noun} bought both"


def test_similar_unknown_item(db: Path, manifest: dict):
    result = tailor("similar", "no-such-item", "--db", db)
    assert result.exit_code == 1
    assert result.stderr == "error: unknown item 'no-such-item'\n"


# -- evaluate -----------------------------------------------------------------------------------


def test_evaluate_temporal(evaluation: dict):
    assert set(evaluation) == {"split", "models", "default"}
    assert set(evaluation["models"]) == set(REGISTRY)
    assert evaluation["default"] in REGISTRY
    split = evaluation["split"]
    assert split["kind"] == "temporal" and split["test_days"] == 28 and split["k"] == K
    assert split["train"]["last_event"] < split["train"]["as_of"] <= split["test"]["first_event"]
    for figures in evaluation["models"].values():
        assert set(figures) == MODEL_KEYS
        assert set(figures["ci95"]) == {f"{m}@{K}" for m in RANKING_METRICS}
        low, high = figures["ci95"][f"recall@{K}"]
        assert low <= figures[f"recall@{K}"] <= high
        assert 0 < figures["customers"] <= 60
        assert 0 <= figures[f"precision@{K}"] <= figures[f"hit_rate@{K}"] <= 1


def test_evaluate_random(db: Path):
    quick = {"TAILOR_RECOMMENDERS": "popularity,personal_frequency"}
    result = tailor_json("evaluate", "--db", db, "--split", "random", "--test-fraction", 0.25,
                         "--k", 5, env=quick)  # fmt: skip
    assert result["split"]["kind"] == "random" and result["split"]["test_fraction"] == 0.25
    assert result["split"]["test_days"] is None
    assert set(result["models"]) == {"popularity", "personal_frequency"}
    assert all(set(f) >= {"recall@5", "ndcg@5", "ci95"} for f in result["models"].values())
    # A quarter of each customer's items (rounded down) is held out.
    assert result["split"]["test"]["interactions"] == pytest.approx(
        result["split"]["train"]["interactions"] / 3, rel=0.15
    )


def test_evaluate_agrees_with_recommend_on_a_build_at_the_train_cutoff(
    db: Path, evaluation: dict, tmp_path: Path
):
    """A model's recall@K from `tailor evaluate` is the recall@K of the lists `tailor recommend`
    gives from a build made `--as-of` the evaluation's train cutoff, scored independently."""
    as_of = evaluation["split"]["train"]["as_of"]
    copy = tmp_path / "shop.duckdb"
    shutil.copyfile(db, copy)
    tailor_json("build", "--db", copy, "--as-of", as_of)
    # The test period's truth, in SQL: pairs whose events from the cut on weigh > 0 in all.
    truth_pairs = sql(
        copy,
        f"""SELECT customer_id, item_id FROM events WHERE timestamp >= CAST(? AS TIMESTAMP)
        GROUP BY 1, 2 HAVING {NET_WEIGHT} > 0""",
        as_of,
    )
    customers = sorted({c for c, _ in truth_pairs})
    items = sorted({i for (i,) in sql(copy, "SELECT item_id FROM items")})
    row, col = {c: n for n, c in enumerate(customers)}, {i: n for n, i in enumerate(items)}
    truth = sp.csr_matrix(
        (np.ones(len(truth_pairs)), ([row[c] for c, _ in truth_pairs],
                                     [col[i] for _, i in truth_pairs])),
        shape=(len(customers), len(items)),
    )  # fmt: skip
    for name, figures in evaluation["models"].items():
        rows = tailor_json("recommend", "--db", copy, "--all", "--k", K, "--model", name)
        lists = np.full((len(customers), K), -1)
        for r in rows:
            if r["customer_id"] in row:
                lists[row[r["customer_id"]], r["rank"] - 1] = col[r["item_id"]]
        recall = np.mean(ranking_metrics(lists, truth, K)["recall"])
        assert figures["customers"] == len(customers), name
        assert recall == pytest.approx(figures[f"recall@{K}"], abs=1e-12), name


def test_recommend_at_most_one_per_category(db: Path, manifest: dict):
    rows = tailor_json(
        "recommend", "--db", db, "--all", "--k", 6, "--max-per-category", 1, "--diversity", 0.5
    )
    category = dict(sql(db, "SELECT item_id, category FROM items"))
    assert rows
    for customer, listed in by_customer(rows).items():
        categories = [category[row["item_id"]] for row in listed]
        assert len(categories) == len(set(categories)), customer
    bad = tailor("recommend", "--db", db, "--all", "--diversity", 2)
    assert bad.exit_code != 0
