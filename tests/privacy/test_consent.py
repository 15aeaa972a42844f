"""Consent flags: stored, read back, and obeyed by lists, offers and the data models learn from."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tailor.cli import app as cli
from tailor.customers.features import customer_features
from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.privacy.consent import (
    NOT_PERSONALIZED,
    consent_of,
    non_personalized,
    opted_out,
    respect_personalization,
    set_consent,
)
from tailor.recommend import factory

EVENTS = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 2, 3, 3, 3],
        "item_id": [10, 11, 10, 12, 11, 12, 12],
        "timestamp": pd.to_datetime(
            [
                "2024-01-01",
                "2024-01-02",
                "2024-01-01",
                "2024-01-03",
                "2024-01-02",
                "2024-01-04",
                "2024-01-05",
            ]
        ),  # fmt: skip
        "value": [1.0, 2.0, 1.0, 3.0, 2.0, 3.0, 3.0],
    }
)
CUSTOMERS = pd.DataFrame({"customer_id": [1, 2, 3], "age": ["30", "40", "50"]})


@pytest.fixture()
def shop(make_warehouse):
    return make_warehouse(events=EVENTS, customers=CUSTOMERS)


def test_set_consent_changes_only_the_flags_given(shop):
    assert set_consent(shop, 2, marketing=False) == {
        "personalization": None, "marketing": False, "analytics": None,
    }  # fmt: skip
    assert set_consent(shop, "2", personalization=False) == {
        "personalization": False, "marketing": False, "analytics": None,
    }  # fmt: skip
    assert set_consent(shop, 2, marketing=True)["marketing"] is True
    # The customer's other attributes stay.
    assert shop.con.execute("SELECT age FROM customers WHERE customer_id = 2").fetchone() == (40,)
    assert opted_out(shop, "personalization") == {"2"} and opted_out(shop, "marketing") == set()


def test_a_customer_not_in_the_customer_table_gets_a_row(shop):
    set_consent(shop, 4, analytics=False)
    assert consent_of(shop, [4, 1]).to_dict(orient="index") == {
        "4": {"personalization": None, "marketing": None, "analytics": False},
        "1": {"personalization": None, "marketing": None, "analytics": None},
    }


@pytest.mark.parametrize(
    ("customer", "flags", "message"),
    [
        (1, {}, "say what changes"),
        (1, {"newsletters": False}, "unknown consent purpose"),
        ("abc", {"marketing": False}, "customer ids are integers"),
    ],
)
def test_bad_consent_requests_are_refused_and_change_nothing(shop, customer, flags, message):
    with pytest.raises(TailorError, match=message):
        set_consent(shop, customer, **flags)
    assert shop.con.execute("SELECT count(*) FROM customers").fetchone() == (3,)
    assert all(not opted_out(shop, p) for p in ("personalization", "marketing", "analytics"))


def test_non_personalized_lists_are_the_cold_start_list_with_a_reason(shop):
    model = factory("personal_frequency")().fit(Dataset.from_warehouse(shop))
    cold = model.recommend_session([], k=2)
    frame = non_personalized(model, ["1", 99], k=2)
    # Customer 1 under the id the build stores (an integer); an unknown one as given.
    assert frame["customer_id"].tolist() == [1, 1, 99, 99]
    assert frame["item_id"].tolist() == cold["item_id"].tolist() * 2
    assert all(r.startswith(NOT_PERSONALIZED + ": ") for r in frame["reason"])
    assert not any("new here" in r for r in frame["reason"])


def test_respect_personalization_replaces_only_the_opted_out_lists_in_order(shop):
    model = factory("personal_frequency")().fit(Dataset.from_warehouse(shop))
    lists = model.recommend([1, 2, 3], k=2)
    out = respect_personalization(lists, model, {"2"}, [1, 2, 3], k=2)
    assert out["customer_id"].tolist() == [1, 1, 2, 2, 3, 3]
    assert out.loc[out["customer_id"] != 2].equals(
        lists.loc[lists["customer_id"] != 2]
        .reset_index(drop=True)
        .set_axis(out.index[out["customer_id"] != 2])
    )
    assert out.loc[out["customer_id"] == 2, "reason"].str.startswith(NOT_PERSONALIZED).all()
    assert respect_personalization(lists, model, set(), [1, 2, 3], k=2) is lists


def test_an_analytics_opt_out_leaves_the_data_models_learn_from(shop):
    set_consent(shop, 3, analytics=False)
    ds = Dataset.from_warehouse(shop)
    assert ds.customer_ids.tolist() == [1, 2]
    assert ds.interactions.sum() == pytest.approx(Dataset.from_warehouse(shop).interactions.sum())
    assert ds.interactions.nnz == 4  # customer 3's three events are gone
    assert customer_features(shop).table.index.tolist() == [1, 2]


def test_cli_consent_set_then_recommend_is_not_personalized(tmp_path, monkeypatch):
    """The contract: `tailor consent set ID --personalization no` -> `tailor recommend
    --customer ID --json` gives only non-personalized items, each reason saying so."""
    monkeypatch.setenv("TAILOR_RECOMMENDERS", "popularity,personal_frequency")
    db = tmp_path / "shop.duckdb"
    runner = CliRunner()

    def run(*args: object) -> dict | list:
        result = runner.invoke(cli, [*map(str, args), "--db", str(db), "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    run("generate", tmp_path / "files", "--customers", 40, "--items", 50, "--days", 60)
    run("build")
    before = run("recommend", "--customer", 7, "--k", 5)
    assert not any(r["reason"].startswith(NOT_PERSONALIZED) for r in before)
    assert run("consent", "set", 7, "--personalization", "no") == {
        "customer_id": "7", "personalization": False, "marketing": None, "analytics": None,
    }  # fmt: skip
    after = run("recommend", "--customer", 7, "--customer", 8, "--k", 5)
    mine = [r for r in after if r["customer_id"] == 7]
    assert len(mine) == 5 and all(r["reason"].startswith(NOT_PERSONALIZED) for r in mine)
    others = [r for r in after if r["customer_id"] == 8]
    assert others and not any(r["reason"].startswith(NOT_PERSONALIZED) for r in others)
    run("consent", "set", 7, "--personalization", "yes")
    assert run("recommend", "--customer", 7, "--k", 5) == before
    bad = runner.invoke(cli, ["consent", "set", "7", "--marketing", "maybe", "--db", str(db)])
    assert bad.exit_code == 1 and "say yes or no" in bad.output
