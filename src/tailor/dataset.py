"""The Dataset: the one in-memory view of the warehouse that every model and analysis takes.

A :class:`Dataset` holds

* ``interactions``: a customers x items ``scipy.sparse.csr_matrix`` of preference weights;
* id maps both ways: ``customer_ids[i]`` is the id of row ``i``, ``customer_index(ids)`` the rows
  of ids (likewise for items);
* ``events``: one row per visible event with integer ``customer``/``item``/``basket`` codes,
  timestamp, event type, quantity, value and its interaction weight;
* attribute frames ``items`` and ``customers`` aligned with the id maps, and the campaign tables.

It is built from the warehouse with SQL (DuckDB does the joins and the filtering) and numpy;
``as_of`` hides every event, redemption and campaign after the cut. The id maps always cover every
customer and item the warehouse knows, so that datasets cut from one warehouse (a training period
and its test period) line up row for row and column for column.

Interaction weight of one event: ``weights[event_type] * log2(1 + quantity)`` (a quantity of 1
weighs 1, 3 weighs 2; a quantity below 1 or missing counts as 1), except for ratings, where the
customer's latest rating value of the item is the weight. Returns weigh negatively, and a pair's
summed weight is floored at 0: an item bought and returned is no preference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.errors import TailorError
from tailor.store.schema import ANALYTICS_CONSENTED, SYSTEM_COLUMNS
from tailor.store.warehouse import Warehouse

DEFAULT_WEIGHTS: dict[str, float] = {
    "purchase": 1.0,
    "cart": 0.5,
    "view": 0.1,
    "rating": 1.0,
    "return": -1.0,
}
"""Interaction weight of one event per event type; types not listed weigh 0."""


AS_OF_RANGE = (pd.Timestamp("1900-01-01"), pd.Timestamp("2200-01-01"))
"""The instants an ``as_of`` cut may be at."""


def as_of_bound(as_of: str | date | datetime | pd.Timestamp | None) -> pd.Timestamp | None:
    """The exclusive upper bound of an ``as_of`` cut.

    A date (``"2017-06-01"``) keeps that whole day; a date and time keeps events up to and
    including that instant.
    """
    if as_of is None:
        return None
    if isinstance(as_of, str):
        try:
            stamp = pd.Timestamp(as_of)
        except ValueError:
            raise TailorError(f"as_of {as_of!r}: not a date or a date and time") from None
        date_only = len(as_of.strip()) <= 10
    elif isinstance(as_of, datetime | pd.Timestamp):
        stamp, date_only = pd.Timestamp(as_of), False
    else:
        stamp, date_only = pd.Timestamp(as_of), True
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    if not AS_OF_RANGE[0] <= stamp < AS_OF_RANGE[1]:
        # Far dates overflow the timestamps of pandas and DuckDB further on.
        raise TailorError(f"as_of {as_of!r}: out of range (years 1900 to 2199)")
    return stamp + (timedelta(days=1) if date_only else timedelta(microseconds=1))


@dataclass(frozen=True)
class Dataset:
    """Interactions, id maps, events and attributes; see the module docstring.

    Attributes
    ----------
    interactions : csr_matrix of shape (n_customers, n_items), float32
    customer_ids, item_ids : ndarray of shape (n_customers,), (n_items,)
        Ids in row/column order (int64 where the warehouse stores integer ids, else object).
    events : DataFrame
        Columns customer, item (int32 codes), basket (int64 code), timestamp (datetime64),
        event_type (category), quantity, value, weight (float32); sorted by timestamp.
    items, customers : DataFrame
        Attributes, one row per item/customer in id-map order (``item_id`` / ``customer_id``
        columns included; missing attributes are NA).
    campaigns, campaign_members, offers, redemptions : DataFrame
        The campaign tables as stored, cut at ``as_of``.
    as_of : Timestamp or None
        Exclusive upper bound of the events shown (see :func:`as_of_bound`).
    """

    interactions: sp.csr_matrix
    customer_ids: np.ndarray
    item_ids: np.ndarray
    events: pd.DataFrame
    items: pd.DataFrame
    customers: pd.DataFrame
    campaigns: pd.DataFrame = field(default_factory=pd.DataFrame)
    campaign_members: pd.DataFrame = field(default_factory=pd.DataFrame)
    offers: pd.DataFrame = field(default_factory=pd.DataFrame)
    redemptions: pd.DataFrame = field(default_factory=pd.DataFrame)
    as_of: pd.Timestamp | None = None
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    # -- building -------------------------------------------------------------------------------

    @classmethod
    def from_warehouse(
        cls,
        wh: Warehouse,
        as_of: str | date | datetime | None = None,
        weights: Mapping[str, float] | None = None,
    ) -> Dataset:
        """Build the dataset with SQL: id maps, visible events, attributes, campaign tables."""
        bound = as_of_bound(as_of)
        con = wh.con
        weights = {**DEFAULT_WEIGHTS, **(weights or {})}
        cut = "timestamp < $bound" if bound is not None else "true"
        params = {"bound": bound.to_pydatetime()} if bound is not None else {}
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __customer_map AS SELECT customer_id, "
            "CAST(row_number() OVER (ORDER BY customer_id) - 1 AS INTEGER) AS idx FROM "
            "(SELECT customer_id FROM customers UNION SELECT customer_id FROM events) "
            # Opted out of analytics: not in the data any model learns from.
            f"WHERE {ANALYTICS_CONSENTED}"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __item_map AS SELECT item_id, "
            "CAST(row_number() OVER (ORDER BY item_id) - 1 AS INTEGER) AS idx FROM "
            "(SELECT item_id FROM items UNION SELECT item_id FROM events)"
        )
        try:
            customer_ids = _ids(con.execute("SELECT customer_id FROM __customer_map ORDER BY idx"))
            item_ids = _ids(con.execute("SELECT item_id FROM __item_map ORDER BY idx"))
            # Basket codes are numbered over all events, before the cut, so that they too line
            # up across datasets cut from one warehouse. A basket is one customer's (shops may
            # number baskets per customer); an event without a basket id is in the basket of its
            # customer's events at that moment (the rule of ingest).
            events = con.execute(
                "SELECT c.idx AS customer, i.idx AS item, e.basket, "
                "e.timestamp, e.event_type, CAST(e.quantity AS FLOAT) AS quantity, "
                "CAST(e.value AS FLOAT) AS value "
                "FROM (SELECT *, CAST(dense_rank() OVER (ORDER BY customer_id, basket_id, "
                "CASE WHEN basket_id IS NULL THEN timestamp END) - 1 AS BIGINT) AS basket "
                "FROM events) e JOIN __customer_map c USING (customer_id) "
                f"JOIN __item_map i USING (item_id) WHERE {cut} "
                # A total order, so that equal inputs give equal frames.
                "ORDER BY e.timestamp, c.idx, i.idx, e.event_type, e.basket, e.quantity, e.value",
                params,
            ).df()
            items = _attributes(wh, "items", "__item_map", "item_id")
            customers = _attributes(wh, "customers", "__customer_map", "customer_id")
        finally:
            con.execute("DROP TABLE IF EXISTS __customer_map")
            con.execute("DROP TABLE IF EXISTS __item_map")
        events["event_type"] = events["event_type"].astype("category")
        events["weight"] = event_weights(events, weights)
        tables = {
            "campaigns": ("campaigns", '"start" < $bound'),
            "campaign_members": ("campaign_members", None),
            "offers": ("offers", None),
            "redemptions": ("redemptions", "timestamp < $bound"),
        }
        frames = {}
        for name, (table, condition) in tables.items():
            where = f"WHERE {condition}" if condition and bound is not None else ""
            frames[name] = con.execute(
                f"SELECT * EXCLUDE ({', '.join(_system(wh, table))}) FROM {table} {where}",
                params if where else {},
            ).df()
        return cls(
            interactions=_matrix(events, len(customer_ids), len(item_ids)),
            customer_ids=customer_ids,
            item_ids=item_ids,
            events=events,
            items=items,
            customers=customers,
            as_of=bound,
            weights=weights,
            **frames,
        )

    # -- views ------------------------------------------------------------------------------------

    @property
    def n_customers(self) -> int:
        return len(self.customer_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def customer_index(self, ids: Iterable[Any]) -> np.ndarray:
        """Row of each customer id; -1 for an id the dataset does not know."""
        return _lookup(self.customer_ids, ids)

    def item_index(self, ids: Iterable[Any]) -> np.ndarray:
        """Column of each item id; -1 for an id the dataset does not know."""
        return _lookup(self.item_ids, ids)

    def with_events(self, mask: np.ndarray) -> Dataset:
        """The same dataset (same id maps and attributes) with only the events where ``mask``.

        Weights are recomputed on the events kept: a rating hidden by the mask no longer
        overrides an earlier rating of the same item that is kept.
        """
        events = self.events.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True)
        events["weight"] = event_weights(events, self.weights)
        return replace(
            self, events=events, interactions=_matrix(events, self.n_customers, self.n_items)
        )

    def without_customers(self, keep: np.ndarray) -> Dataset:
        """The dataset with only the customer rows where ``keep`` (erasure's fold-out).

        Rows are renumbered in order; the item map, basket codes and event weights stay as they
        are (a customer's events weigh alone), so what is kept is what it was.
        """
        keep = np.asarray(keep, dtype=bool)
        row = np.cumsum(keep, dtype=np.int64) - 1  # old row -> new row, where kept
        events = self.events.loc[keep[self.events["customer"].to_numpy()]].reset_index(drop=True)
        events["customer"] = row[events["customer"].to_numpy()].astype(events["customer"].dtype)
        gone = pd.Index(pd.Series(self.customer_ids[~keep], dtype=object).astype(str))

        def kept(frame: pd.DataFrame) -> pd.DataFrame:
            if "customer_id" not in frame.columns:
                return frame
            held = ~frame["customer_id"].astype(str).isin(gone)
            return frame.loc[held.to_numpy()].reset_index(drop=True)

        return replace(
            self,
            interactions=self.interactions[keep],
            customer_ids=self.customer_ids[keep],
            events=events,
            customers=self.customers.loc[keep].reset_index(drop=True),
            campaign_members=kept(self.campaign_members),
            redemptions=kept(self.redemptions),
        )

    def cut(self, as_of: str | date | datetime | None) -> Dataset:
        """The dataset as it was ``as_of`` (events, redemptions and campaigns after it hidden)."""
        bound = as_of_bound(as_of)
        if bound is None:
            return self
        if self.as_of is not None and bound > self.as_of:
            bound = self.as_of
        shown = self.with_events(self.events["timestamp"].to_numpy() < np.datetime64(bound))
        return replace(
            shown,
            as_of=bound,
            redemptions=_before(self.redemptions, "timestamp", bound),
            campaigns=_before(self.campaigns, "start", bound),
        )

    # -- splits for evaluation ------------------------------------------------------------------

    def temporal_split(self, test_days: float) -> tuple[Dataset, Dataset]:
        """(train, test): test holds the last ``test_days`` days of events, train the rest.

        The cutoff is ``test_days`` before the last visible event; both share the id maps.
        """
        if len(self.events) == 0:
            raise TailorError("no events to split")
        if test_days <= 0:
            raise TailorError("test_days must be positive")
        last = self.events["timestamp"].max()
        cutoff = np.datetime64(last - pd.Timedelta(days=test_days))
        before = self.events["timestamp"].to_numpy() <= cutoff
        train = self.cut(pd.Timestamp(cutoff))
        return train, self.with_events(~before)

    def last_basket_split(self) -> tuple[Dataset, Dataset]:
        """(train, test): each customer's last basket is the test; customers with one basket
        keep it in train and have no test."""
        events = self.events
        last_time = events.groupby("customer")["timestamp"].transform("max")
        baskets = events.groupby("customer")["basket"].transform("nunique")
        last_basket = events["basket"].where(events["timestamp"] == last_time)
        last_basket = last_basket.groupby(events["customer"]).transform("max")
        test = (events["basket"] == last_basket) & (baskets > 1)
        return self.with_events(~test.to_numpy()), self.with_events(test.to_numpy())

    def holdout_split(
        self, fraction: float = 0.2, random_state: int = 0, by: str = "customer"
    ) -> tuple[Dataset, Dataset]:
        """(train, test): a random ``fraction`` of each customer's interacted items (``by=
        "customer"``) or of each item's customers (``by="item"``), with all the events of each
        held-out pair, is held out (rating-style evaluation).

        Per customer (per item) ``floor(fraction x its pairs)`` pairs are held out; one with a
        single pair keeps it.
        """
        if not 0 < fraction < 1:
            raise TailorError("fraction must be between 0 and 1")
        if by not in ("customer", "item"):
            raise TailorError(f"holdout by {by!r}: use customer or item")
        rng = np.random.default_rng(random_state)
        pairs = self.events[["customer", "item"]].drop_duplicates()
        draw = pd.Series(rng.random(len(pairs)), index=pairs.index)
        rank = draw.groupby(pairs[by]).rank(method="first")
        other = "item" if by == "customer" else "customer"
        size = pairs.groupby(by)[other].transform("size")
        held = pairs.loc[(rank <= np.floor(size * fraction)) & (size > 1)]
        key = self.events["customer"].to_numpy(np.int64) * self.n_items + self.events["item"]
        held_key = held["customer"].to_numpy(np.int64) * self.n_items + held["item"]
        test = np.isin(key, held_key)
        return self.with_events(~test), self.with_events(test)

    def summary(self) -> dict[str, Any]:
        """Counts and period of what the dataset shows."""
        ev = self.events
        return {
            "customers": self.n_customers,
            "items": self.n_items,
            "events": len(ev),
            "customers_with_events": int(ev["customer"].nunique()),
            "items_with_events": int(ev["item"].nunique()),
            "baskets": int(ev["basket"].nunique()),
            "interactions": int(self.interactions.nnz),
            "density": self.interactions.nnz / max(1, self.n_customers * self.n_items),
            "first_event": ev["timestamp"].min().isoformat() if len(ev) else None,
            "last_event": ev["timestamp"].max().isoformat() if len(ev) else None,
            "as_of": self.as_of.isoformat() if self.as_of is not None else None,
        }


def event_weights(events: pd.DataFrame, weights: Mapping[str, float]) -> np.ndarray:
    """Interaction weight of each event (see the module docstring), float32."""
    kind = events["event_type"].astype(str)
    per_type = kind.map(weights).fillna(0.0).to_numpy(np.float64)
    quantity = events["quantity"].fillna(1.0).to_numpy(np.float64)
    weight = per_type * np.log2(1.0 + np.maximum(quantity, 1.0))
    rating = (kind == "rating").to_numpy()
    if rating.any():
        # Only a customer's latest rating of an item counts, at its value.
        latest = ~events.loc[rating, ["customer", "item"]].duplicated(keep="last").to_numpy()
        value = events.loc[rating, "value"].fillna(0.0).to_numpy(np.float64)
        weight[rating] = np.where(latest, per_type[rating] * value, 0.0)
    return weight.astype(np.float32)


def _matrix(events: pd.DataFrame, n_customers: int, n_items: int) -> sp.csr_matrix:
    matrix = sp.coo_matrix(
        (
            events["weight"].to_numpy(np.float32),
            (events["customer"].to_numpy(np.int32), events["item"].to_numpy(np.int32)),
        ),
        shape=(n_customers, n_items),
    ).tocsr()
    matrix.sum_duplicates()
    np.maximum(matrix.data, 0, out=matrix.data)
    matrix.eliminate_zeros()
    return matrix


def _ids(result: Any) -> np.ndarray:
    column = result.fetchnumpy()
    values = next(iter(column.values()))
    values = np.asarray(values)
    return values if values.dtype.kind in "iu" else values.astype(object)


def _system(wh: Warehouse, table: str) -> list[str]:
    return [c for c in SYSTEM_COLUMNS if c in wh.columns(table)]


def _attributes(wh: Warehouse, table: str, id_map: str, key: str) -> pd.DataFrame:
    """Attribute table aligned to an id map: one row per id, in index order."""
    frame = wh.con.execute(
        f"SELECT t.* EXCLUDE ({', '.join(_system(wh, table))}) REPLACE (m.{key} AS {key}) "
        f"FROM {id_map} m LEFT JOIN {table} t USING ({key}) ORDER BY m.idx"
    ).df()
    return frame.reset_index(drop=True)


def _lookup(known: np.ndarray, ids: Iterable[Any]) -> np.ndarray:
    wanted = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
    valid = np.ones(len(wanted), dtype=bool)
    if known.dtype.kind in "iu":
        wanted, valid = _integer_ids(wanted)
    else:
        wanted = wanted.astype(str).astype(object)
        known = known.astype(str).astype(object)
    if len(known) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    # Search a sorted copy: DuckDB's text collation need not match numpy's order.
    order = np.argsort(known, kind="stable")
    sorted_known = known[order]
    pos = np.clip(np.searchsorted(sorted_known, wanted), 0, len(known) - 1)
    return np.where(valid & (sorted_known[pos] == wanted), order[pos], -1).astype(np.int64)


def _integer_ids(wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids, mask of the valid ones) of ids that are integers however written (12, 12.0,
    "12"); text that is not an integer, and 12.5, cannot be an integer id."""
    if wanted.dtype.kind in "iu":
        return wanted.astype(np.int64), np.ones(len(wanted), dtype=bool)
    numeric = pd.to_numeric(pd.Series(wanted, dtype=object), errors="coerce")
    if numeric.dtype.kind in "iu":
        return numeric.to_numpy(np.int64), np.ones(len(wanted), dtype=bool)
    values = numeric.to_numpy(np.float64, na_value=np.nan)
    valid = np.isfinite(values) & (values == np.floor(values))
    return np.where(valid, values, 0).astype(np.int64), valid


def _before(frame: pd.DataFrame, column: str, bound: pd.Timestamp) -> pd.DataFrame:
    if frame.empty or column not in frame:
        return frame
    return frame.loc[frame[column] < bound].reset_index(drop=True)
