"""The evaluation report: the page, its charts and its figures, from a hand-made evaluation and
from a real ``tailor evaluate --report`` run that must agree with ``--json``."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tailor.cli import app
from tailor.customers.segments import RFM_SEGMENTS
from tailor.dataset import Dataset
from tailor.evaluate.report import CURVE_KS, headline, winner, write_report
from tailor.store import Warehouse

K = 10
PNG = b"\x89PNG\r\n\x1a\n"


def figures(recall: float, ndcg: float, coverage: float) -> dict:
    return {
        f"precision@{K}": recall / 2,
        f"recall@{K}": recall,
        f"ndcg@{K}": ndcg,
        "coverage": coverage,
        "novelty": float("nan"),
        "customers": 1234,
        "ci95": {f"recall@{K}": [recall - 0.01, recall + 0.02]},
        "recall_curve": {"1": recall / 5, "5": recall / 2, "10": recall, "50": recall * 2},
    }


DATA = {
    "split": {
        "kind": "temporal",
        "test_days": 28,
        "test_fraction": None,
        "k": K,
        "exclude_purchased": False,
        "train": {"customers": 200, "events": 5000, "first_event": "2024-01-01T00:00:00"},
        "test": {"customers": 150, "events": 800, "first_event": "2024-06-03T08:00:00",
                 "last_event": "2024-06-30T20:00:00"},
    },
    "models": {
        "popularity": figures(recall=0.0576, ndcg=0.1545, coverage=0.01),
        "recency_frequency": figures(recall=0.1382, ndcg=0.3496, coverage=0.30),
        "hybrid": figures(recall=0.1415, ndcg=0.3566, coverage=0.25),
    },
    "default": "hybrid",
}  # fmt: skip


def table_cells(page: str) -> dict[tuple[str, str], str]:
    """(model, metric) -> the text of its cell in the report's table of figures."""
    cells = re.findall(r'<td data-model="([^"]+)" data-metric="([^"]+)">([^<]*)</td>', page)
    return {(model, metric): text for model, metric, text in cells}


def images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_headline_names_the_winner_and_its_margins_worked_by_hand():
    # 0.1415 / 0.1382 = 1.0239 (2.4 % more); 0.1415 / 0.0576 = 2.4566 (145.7 % more).
    assert winner(DATA["models"], K) == "hybrid"
    assert headline(DATA).startswith(
        "hybrid finds 2.4 % more of what customers bought next than recency_frequency, the best "
        "other model, and 145.7 % more than popularity (recall@10 0.1415 vs 0.1382 vs 0.0576)"
    )


def test_headline_with_popularity_as_the_runner_up_and_alone():
    two = {**DATA, "models": {n: DATA["models"][n] for n in ("popularity", "hybrid")}}
    assert headline(two).startswith(
        "hybrid finds 145.7 % more of what customers bought next than popularity (recall@10"
    )
    one = {**DATA, "models": {"hybrid": DATA["models"]["hybrid"]}}
    assert headline(one) == "hybrid is the only model evaluated (recall@10 0.1415)."


def test_winner_is_by_ndcg_not_recall():
    models = {"a": figures(0.5, 0.2, 0.1), "b": figures(0.4, 0.3, 0.1)}
    assert winner(models, K) == "b"
    assert headline({**DATA, "models": models}).startswith(
        "b finds 20.0 % less of what customers bought next than a"
    )


def test_write_report_on_a_hand_made_evaluation(tmp_path: Path):
    index = write_report(DATA, tmp_path / "report")
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert headline(DATA) in page
    for name in DATA["models"]:
        assert name in page
    srcs = images(page)
    assert sorted(srcs) == ["accuracy_vs_coverage.png", "recall_ci.png", "recall_curve.png"]
    for src in srcs:
        assert (index.parent / src).read_bytes().startswith(PNG)
    cells = table_cells(page)
    assert cells[("hybrid", f"recall@{K}")] == "0.1415"
    assert cells[("popularity", "coverage")] == "0.0100"
    assert cells[("recency_frequency", "customers")] == "1,234"
    assert cells[("hybrid", "novelty")] == "—"  # NaN
    assert ("hybrid", "ci95") not in cells and ("hybrid", "recall_curve") not in cells
    assert "0.1315 – 0.1615" in page  # hybrid's recall interval
    assert "customer segments exist" in page
    assert "2024-06-03 to 2024-06-30" in page  # the test period, from the split
    # Offline: nothing is fetched from anywhere.
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_write_report_without_a_recall_curve(tmp_path: Path):
    models = {
        name: {key: value for key, value in f.items() if key != "recall_curve"}
        for name, f in DATA["models"].items()
    }
    page = write_report({**DATA, "models": models}, tmp_path).read_text(encoding="utf-8")
    assert sorted(images(page)) == ["accuracy_vs_coverage.png", "recall_ci.png"]
    assert "No recall curve" in page


# -- the CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, str]:
    """`tailor evaluate --report R --json` on a small generated shop: (json, report dir, stderr)."""
    folder = tmp_path_factory.mktemp("shop")
    db, report = folder / "shop.duckdb", folder / "R"
    env = {"TAILOR_RECOMMENDERS": "popularity,recency_frequency", "TAILOR_CONFIG": ""}
    runner = CliRunner()
    shop = ["--customers", "60", "--items", "80", "--days", "120", "--json"]
    made = runner.invoke(app, ["generate", str(folder / "files"), "--db", str(db), *shop], env=env)
    assert made.exit_code == 0, made.output
    args = ["evaluate", "--db", str(db), "--split", "temporal", "--test-days", "28", "--k", str(K)]
    result = runner.invoke(app, [*args, "--report", str(report), "--json"], env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), report, result.stderr


def test_cli_report_agrees_with_json(run: tuple[dict, Path, str]):
    data, report, stderr = run
    index = report / "index.html"
    assert f"report written to {index}" in stderr
    page = index.read_text(encoding="utf-8")
    assert set(data["models"]) == {"popularity", "recency_frequency"}
    for name in data["models"]:
        assert name in page
    assert headline(data) in page
    assert re.search(r"\w+ finds .* of what customers bought next (than|as) \w+", headline(data))
    srcs = images(page)
    assert "recall_curve.png" in srcs and len(srcs) == 4  # with the per-segment bars
    for src in srcs:
        assert (report / src).read_bytes().startswith(PNG)
    cells = table_cells(page)
    for name, figures_ in data["models"].items():
        scalars = {
            key: v for key, v in figures_.items() if key not in ("ci95", "recall_curve", "segments")
        }
        assert {metric for model, metric in cells if model == name} == set(scalars)
        for metric, value in scalars.items():
            expected = f"{value:,}" if isinstance(value, int) else f"{value:.4f}"
            assert cells[(name, metric)] == expected, (name, metric)


def test_cli_recall_curve_is_recall_at_each_cut(run: tuple[dict, Path, str]):
    data, _, _ = run
    for figures_ in data["models"].values():
        curve = {int(cut): value for cut, value in figures_["recall_curve"].items()}
        assert sorted(curve) == sorted(CURVE_KS)
        assert curve[K] == pytest.approx(figures_[f"recall@{K}"])  # same lists, same figure
        values = [curve[cut] for cut in sorted(curve)]
        assert values == sorted(values)  # a longer list never finds less


# -- per-segment figures --------------------------------------------------------------------------


def segment_cells(page: str) -> dict[tuple[str, str, str], str]:
    """(model, segment, metric) -> the text of its cell in the report's segment table."""
    cells = re.findall(
        r'<td data-model="([^"]+)" data-segment="([^"]+)" data-metric="([^"]+)">([^<]*)</td>',
        page,
    )
    return {(model, html.unescape(segment), metric): text for model, segment, metric, text in cells}


def test_write_report_with_segments(tmp_path: Path):
    def seg(recall: float, customers: int) -> dict:
        return {"customers": customers, f"recall@{K}": recall, f"ndcg@{K}": recall / 2,
                f"precision@{K}": recall / 4}  # fmt: skip

    models = {
        name: {**f, "segments": {"Champions": seg(f[f"recall@{K}"] * 1.5, 800),
                                 "Lost": seg(f[f"recall@{K}"] / 2, 434)}}
        for name, f in DATA["models"].items()
    }  # fmt: skip
    page = write_report({**DATA, "models": models}, tmp_path).read_text(encoding="utf-8")
    assert "recall_by_segment.png" in images(page)
    assert (tmp_path / "recall_by_segment.png").read_bytes().startswith(PNG)
    cells = segment_cells(page)
    assert cells[("hybrid", "Champions", f"recall@{K}")] == f"{0.1415 * 1.5:.4f}"
    assert cells[("popularity", "Lost", f"ndcg@{K}")] == f"{0.0576 / 4:.4f}"
    assert cells[("recency_frequency", "Lost", f"precision@{K}")] == f"{0.1382 / 8:.4f}"
    assert len(cells) == 3 * 2 * 3  # models x segments x metrics
    assert "Champions (800 customers)" in page and "Lost (434 customers)" in page
    assert "customer segments exist" not in page
    # The segments stay out of the table of overall figures.
    assert all(metric != "segments" for _, metric in table_cells(page))


def test_cli_segments_are_rfm_segments_that_add_up(run: tuple[dict, Path, str]):
    data, report, _ = run
    page = (report / "index.html").read_text(encoding="utf-8")
    cells = segment_cells(page)
    for name, figures_ in data["models"].items():
        segments = figures_["segments"]
        assert sum(s["customers"] for s in segments.values()) == figures_["customers"]
        # The overall recall is the customer-weighted mean of the segments' recalls.
        weighted = sum(s["customers"] * s[f"recall@{K}"] for s in segments.values())
        assert weighted / figures_["customers"] == pytest.approx(figures_[f"recall@{K}"])
        assert set(segments) <= set(RFM_SEGMENTS)
        for label, seg in segments.items():
            assert cells[(name, label, f"recall@{K}")] == f"{seg[f'recall@{K}']:.4f}"
    assert "recall_by_segment.png" in images(page)


def test_cli_ratings_with_item_holdout_and_threshold(tmp_path: Path):
    """`tailor generate --ratings` then `tailor evaluate --split random --holdout-by item
    --relevance-threshold 4`: the split is by item, only ratings >= 4 count, no segments."""
    db = tmp_path / "ratings.duckdb"
    env = {"TAILOR_RECOMMENDERS": "popularity,ease", "TAILOR_CONFIG": ""}
    runner = CliRunner()
    size = ["--customers", "200", "--items", "100", "--json"]
    made = runner.invoke(
        app, ["generate", str(tmp_path / "files"), "--ratings", "--db", str(db), *size], env=env
    )
    assert made.exit_code == 0, made.output
    assert set(json.loads(made.stdout)["files"]) == {"events", "items", "customers"}
    base = ["evaluate", "--db", str(db), "--split", "random", "--test-fraction", "0.25",
            "--k", "10", "--json"]  # fmt: skip
    by_item = runner.invoke(
        app, [*base, "--holdout-by", "item", "--relevance-threshold", "4"], env=env
    )
    assert by_item.exit_code == 0, by_item.output
    result = json.loads(by_item.stdout)
    split = result["split"]
    assert split["holdout_by"] == "item" and split["relevance_threshold"] == 4
    assert all("segments" not in f for f in result["models"].values())  # no purchases
    every = json.loads(runner.invoke(app, [*base, "--holdout-by", "item"], env=env).stdout)
    # The same split; the threshold keeps fewer customers with something to find.
    assert every["split"]["test"] == split["test"]
    assert 0 < result["models"]["ease"]["customers"] < every["models"]["ease"]["customers"]
    # By hand from the warehouse: customers with a held-out rating >= 4.
    with Warehouse(db, read_only=True) as wh:
        ds = Dataset.from_warehouse(wh)
    _, test = ds.holdout_split(0.25, random_state=0, by="item")
    relevant = test.events.loc[test.events["value"] >= 4, "customer"].nunique()
    assert result["models"]["ease"]["customers"] == relevant
    bad = runner.invoke(app, [*base, "--holdout-by", "basket"], env=env)
    assert bad.exit_code == 1 and "holdout by 'basket'" in bad.output
