"""Unusual customer-weeks: what is unusual this week, and why.

Each customer's events are cut into ISO weeks (Monday 00:00 to Sunday 23:59, in the timestamps'
own wall-clock time) and described by a few features (:data:`FEATURES`): spend, shopping trips,
items, return rate, events, events per trip, and how far the week's events lie from the hours of
the day the customer usually shops. A week is compared with the same customer's previous active
weeks (up to ``history_weeks`` of them) by a one-sided robust z-score per feature::

    z = (value - median) / scale,    scale = 1.4826 * MAD, within bounds

where the median and the MAD (median absolute deviation) are those of the customer's own
previous weeks, so that one odd week in the history cannot hide the next; 1.4826 makes the
scaled MAD a standard deviation for normal data. Money and counts are skewed (a stock-up week is
common, a week of half the usual is too), so they are compared on a log scale,
``log(value + offset)`` (offset: 1 for counts, a tenth of the median weekly spend for money),
where the scale is kept between ``log(1.5)`` and ``log(1.8)``: a factor of 1.5 is at most 1 z,
so from a steady history a flag needs about 4 times the usual (1.5 ** 3.5 = 4.1), and a factor
of 1.8 at least 1 z, so about 8 times the usual (1.8 ** 3.5 = 7.8) is flagged however erratic
the customer (without the cap, a typical Complete Journey household, whose weekly spend varies
by a factor of about 1.9, would need 9 times its usual). Shares (the return rate) have a floor of
10 percentage points, hours one of 1.5 hours. The floors keep a constant history (MAD 0) from
giving an infinite z. Only rises count: a quiet week is the business of churn, not anomalies.
The return rate is also compared with every customer active that week (their median and MAD),
which catches a return rate far above everyone's even when the customer always returns that much.

The **score** of a week is its largest z, floored at 0: how many robust standard deviations its
most unusual feature lies above what is usual. Above 3.5 (Iglewicz and Hoaglin's cut-off for
modified z-scores) a week is flagged, and its reason names the feature, the value and the usual,
e.g. ``"spent $412 in the week of 2017-11-20, 6.2x their usual $66"``.

Why robust z-scores and no IsolationForest: every flag must carry its reason, a feature with
its value and its usual; a per-feature z gives that directly, on a fixed scale (3.5 means the
same in every shop and every week), is invariant to the currency, and costs a few sorts. An
isolation forest scores the joint feature vector against a population, with no reason to give,
a score whose level depends on the data mix and on ``contamination``, and it would compare a
customer with everyone rather than with themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd

from tailor.errors import TailorError

REQUIRED_COLUMNS = ("customer_id", "timestamp", "event_type", "quantity", "value", "basket")

SCALED_MAD = 1.4826  # MAD x 1.4826 estimates a standard deviation for normal data
RATIO_FLOOR = 1.5  # money and counts: a factor of 1.5 off the usual is at most 1 z ...
RATIO_CAP = 1.8  # ... and a factor of 1.8 at least 1 z
SHARE_FLOOR = 0.10  # shares: 10 percentage points off the usual is at most 1 z
HOURS_FLOOR = 1.5  # hours from the usual hours: 1.5 hours is at most 1 z
MONEY_OFFSET = 0.1  # log(spend + a tenth of the median weekly spend): a week with no spend is
# finite, and a change of currency shifts every log by the same constant
USUAL_HOUR_SHARE = 0.05  # an hour of the day is usual for a customer when it held at least 5 %
# of their events in their previous active weeks (their busiest hour always is)


class Feature(NamedTuple):
    """How a weekly feature is compared and told."""

    kind: str  # "money" or "count" (log scale), "share" or "hours" (linear)
    phrase: str  # what the customer did: {v} the value, {week} the Monday, {h} the unusual hour
    label: str  # the feature in a list of others ("also unusual: ...")
    population: bool  # also compared with every customer active that week


FEATURES: dict[str, Feature] = {
    "spend": Feature("money", "spent {v} in the week of {week}", "spend", False),
    "baskets": Feature(
        "count", "made {v} shopping trips in the week of {week}", "shopping trips", False
    ),
    "items": Feature("count", "bought {v} items in the week of {week}", "items", False),
    "returns_rate": Feature(
        "share", "returned {v} of what they bought in the week of {week}", "returns", True
    ),
    "events": Feature("count", "logged {v} events in the week of {week}", "events", False),
    "events_per_trip": Feature(
        "count",
        "averaged {v} events per shopping trip in the week of {week}",
        "events per trip",
        False,
    ),
    "hours_from_usual": Feature(
        "hours",
        "was active around {h}:00 in the week of {week}, on average {v} hours from their usual"
        " shopping hours",
        "shopping hours",
        False,
    ),
}
"""The weekly features scored, in the order ties between them are broken.

Only the return rate is also compared with the population: spend, trips, items and events per
trip differ by household (a family's big weekly shop would be unusual against everyone, every
week), and the hours are already relative to the customer's own."""


@dataclass(frozen=True)
class AnomalyResult:
    """What :func:`detect` found.

    Attributes
    ----------
    weeks : DataFrame
        One row per scored customer-week (a week with at least ``min_history_weeks`` active
        weeks of the customer before it), sorted by customer_id and week_start: the columns of
        :func:`customer_weeks`; ``previous_weeks`` (the active weeks before it); per feature
        ``f`` of :data:`FEATURES`, ``f_usual`` (the median of the customer's previous weeks, up
        to ``history_weeks`` of them) and ``f_z`` (the robust z against them, >= 0);
        ``returns_rate_population`` and ``returns_rate_population_z`` (the median of every
        customer active that week, and the robust z against them); ``score`` (the largest z,
        >= 0), ``feature`` and ``compared_with`` (``"own history"`` or ``"population"``) of
        the largest z ("" when the score is 0), ``flagged`` (``score > threshold``) and
        ``reason`` (a sentence; "" when not flagged).
    customers : DataFrame
        One row per customer with events: ``customer_id``, ``anomaly_week`` (Monday of their
        latest active week), ``anomaly_score`` (that week's score; 0 without enough history),
        ``anomaly_feature`` and ``anomaly_reason`` (the week's reason when flagged, "" when
        not, ``"not enough history"`` with fewer than ``min_history_weeks`` active weeks
        before it).
    flags : DataFrame
        The flagged weeks of the last week of the data, by score descending: ``customer_id``,
        ``week_start``, ``score``, ``feature``, ``compared_with``, ``value``, ``usual``,
        ``reason``. What is unusual this week.
    last_week : Timestamp or None
        Monday of the last week of the data (of the instant before ``as_of`` when given); None
        without events.
    threshold : float
        The score above which a week is flagged.
    """

    weeks: pd.DataFrame
    customers: pd.DataFrame
    flags: pd.DataFrame
    last_week: pd.Timestamp | None
    threshold: float


def customer_weeks(
    events: pd.DataFrame,
    as_of: pd.Timestamp | None = None,
    *,
    history_weeks: int = 26,
) -> pd.DataFrame:
    """Weekly behaviour of each customer: one row per (customer_id, week_start) with events.

    One DuckDB pass over the frame does the grouping; the hours need each customer's previous
    weeks and come from cumulative sums in NumPy.

    Parameters
    ----------
    events : DataFrame
        One row per event with ``customer_id`` (int or str), ``timestamp`` (datetime64; a time
        zone is dropped, keeping the wall-clock time), ``event_type`` (purchase, return, view,
        cart, rating), ``quantity`` (>= 0; a return's is positive), ``value`` (money; NaN
        counts 0) and ``basket`` (int64 code of a shopping trip).
    as_of : Timestamp, optional
        Exclusive end: events at or after it are ignored. None keeps every event.
    history_weeks : int
        How many of the customer's previous active weeks define their usual hours.

    Returns
    -------
    DataFrame of shape (n_customer_weeks, 12), sorted by customer_id and week_start:

    * ``customer_id``; ``week_start`` (datetime64[ns], the Monday 00:00 opening the ISO week);
    * ``spend``, ``returned``: value of the purchases / of the returns (money);
    * ``baskets``: distinct baskets (trips) with any event; ``items``: purchased quantity;
      ``events``: events of any type;
    * ``returns_rate``: ``returned / spend`` (1.0 for returns with no purchase that week, 0 with
      neither); ``events_per_trip``: ``events / baskets``;
    * ``hours_from_usual``: mean distance in hours (0-12, around the clock) of the week's events
      from the nearest of the customer's usual hours of the day, those that held at least 5 % of
      their events in the previous ``history_weeks`` active weeks (NaN in a customer's first
      week); ``unusual_hour``: the hour of day (0-23) contributing most to it, -1 when every
      event fell in a usual hour.
    """
    frame = _checked(events)
    bound = None if as_of is None else _naive(pd.Timestamp(as_of)).to_pydatetime()
    hour_counts = ", ".join(f"count(*) FILTER (WHERE hour = {h}) AS h{h}" for h in range(24))
    where = "" if bound is None else 'WHERE CAST("timestamp" AS TIMESTAMP) < $bound'
    con = _database().cursor()
    try:
        con.register("events_frame", frame)
        weekly = con.execute(
            f"""
            WITH e AS (
                SELECT customer_id,
                       date_trunc('week', CAST("timestamp" AS TIMESTAMP)) AS week_start,
                       hour(CAST("timestamp" AS TIMESTAMP)) AS hour,
                       CAST(event_type AS VARCHAR) AS event_type,
                       CASE WHEN isnan(value) THEN NULL ELSE value END AS value,
                       CASE WHEN isnan(quantity) THEN NULL ELSE quantity END AS quantity,
                       basket
                FROM events_frame
                {where}
            )
            SELECT customer_id, week_start,
                   coalesce(sum(value) FILTER (WHERE event_type = 'purchase'), 0) AS spend,
                   coalesce(sum(value) FILTER (WHERE event_type = 'return'), 0) AS returned,
                   count(DISTINCT basket) AS baskets,
                   coalesce(sum(quantity) FILTER (WHERE event_type = 'purchase'), 0) AS items,
                   count(*) AS events,
                   {hour_counts}
            FROM e
            GROUP BY customer_id, week_start
            ORDER BY customer_id, week_start
            """,
            {} if bound is None else {"bound": bound},
        ).df()
    finally:
        con.close()

    hour_columns = [f"h{h}" for h in range(24)]
    hours = weekly[hour_columns].to_numpy(np.int64)
    out = weekly.drop(columns=hour_columns)
    out["week_start"] = out["week_start"].astype("datetime64[ns]")
    for name in ("spend", "returned", "items"):
        out[name] = out[name].astype(float)
    for name in ("baskets", "events"):
        out[name] = out[name].astype(np.int64)
    spend, returned = out["spend"].to_numpy(), out["returned"].to_numpy()
    out["returns_rate"] = np.divide(
        returned,
        np.where(spend > 0, spend, returned),
        out=np.zeros(len(out)),
        where=(spend > 0) | (returned > 0),
    )
    out["events_per_trip"] = out["events"] / np.maximum(out["baskets"], 1)
    _, pos = _positions(out["customer_id"])
    out["hours_from_usual"], out["unusual_hour"] = _hours_from_usual(hours, pos, history_weeks)
    return out


def detect(
    events: pd.DataFrame,
    as_of: pd.Timestamp | None = None,
    min_history_weeks: int = 4,
    threshold: float = 3.5,
    *,
    history_weeks: int = 26,
    currency: str = "$",
) -> AnomalyResult:
    """Score every customer-week against the customer's own past, and flag the unusual ones.

    See the module docstring for the score. Vectorised throughout: the history of every week is
    read as one (n_weeks, history_weeks) block of previous values, whose medians and MADs come
    from two sorts per feature.

    Parameters
    ----------
    events : DataFrame
        The events, as for :func:`customer_weeks`.
    as_of : Timestamp, optional
        Exclusive end; the last week of the data is then the week holding the instant before
        it. None: every event, and the last week is that of the latest event.
    min_history_weeks : int
        Active weeks a customer needs before a week for it to be scored (>= 1).
    threshold : float
        A week whose score exceeds it is flagged (3.5: Iglewicz and Hoaglin's cut-off).
    history_weeks : int
        The usual is taken over at most this many previous active weeks (the most recent ones).
    currency : str
        Prefix of money in the reasons.

    Returns
    -------
    AnomalyResult
        ``weeks`` (every scored customer-week), ``customers`` (one row per customer, about
        their latest week) and ``flags`` (the flagged weeks of the last week); see its
        docstring for the columns.
    """
    if min_history_weeks < 1:
        raise TailorError(f"min_history_weeks must be at least 1, got {min_history_weeks}")
    if history_weeks < 1:
        raise TailorError(f"history_weeks must be at least 1, got {history_weeks}")
    weekly = customer_weeks(events, as_of, history_weeks=history_weeks)
    starts, pos = _positions(weekly["customer_id"])
    scored = np.flatnonzero(pos >= min_history_weeks)
    spend = weekly["spend"].to_numpy()
    money_unit = float(np.median(spend[spend > 0])) if (spend > 0).any() else 1.0
    week_of = weekly["week_start"].to_numpy()

    weeks = weekly.iloc[scored].reset_index(drop=True)
    weeks["previous_weeks"] = pos[scored]
    names, against, z_columns, values, usuals = [], [], [], [], []
    for name, feature in FEATURES.items():
        x = weekly[name].to_numpy(float)
        t, bounds = _comparable(x, feature.kind, money_unit)
        median, mad, usual = _prior_median_mad(t, pos, scored, history_weeks, x)
        weeks[f"{name}_usual"] = usual
        weeks[f"{name}_z"] = _robust_z(t[scored], median, mad, bounds)
        names.append(name)
        against.append("own history")
        z_columns.append(weeks[f"{name}_z"].to_numpy())
        values.append(x[scored])
        usuals.append(usual)
    for name, feature in FEATURES.items():
        if not feature.population:
            continue
        x = weekly[name].to_numpy(float)
        t, bounds = _comparable(x, feature.kind, money_unit)
        median = pd.Series(t).groupby(week_of).transform("median").to_numpy()
        mad = pd.Series(np.abs(t - median)).groupby(week_of).transform("median").to_numpy()
        usual = pd.Series(x).groupby(week_of).transform("median").to_numpy()
        weeks[f"{name}_population"] = usual[scored]
        weeks[f"{name}_population_z"] = _robust_z(t[scored], median[scored], mad[scored], bounds)
        names.append(name)
        against.append("population")
        z_columns.append(weeks[f"{name}_population_z"].to_numpy())
        values.append(x[scored])
        usuals.append(usual[scored])

    z_all = np.column_stack(z_columns)
    rows = np.arange(len(weeks))
    top = z_all.argmax(axis=1)
    score = z_all[rows, top]
    value = np.column_stack(values)[rows, top]
    usual = np.column_stack(usuals)[rows, top]
    flagged = score > threshold
    weeks["score"] = score
    weeks["feature"] = np.where(score > 0, np.asarray(names, dtype=object)[top], "")
    weeks["compared_with"] = np.where(score > 0, np.asarray(against, dtype=object)[top], "")
    weeks["flagged"] = flagged
    weeks["reason"] = _reasons(weeks, z_all, names, top, value, usual, threshold, currency)

    customers = _latest(weekly, weeks, starts, scored)
    last_week = _last_week(weekly, as_of)
    this_week = flagged & (weeks["week_start"].to_numpy() == np.datetime64(last_week, "ns"))
    flags = pd.DataFrame(
        {
            "customer_id": weeks["customer_id"].to_numpy()[this_week],
            "week_start": weeks["week_start"].to_numpy()[this_week],
            "score": score[this_week],
            "feature": weeks["feature"].to_numpy()[this_week],
            "compared_with": weeks["compared_with"].to_numpy()[this_week],
            "value": value[this_week],
            "usual": usual[this_week],
            "reason": weeks["reason"].to_numpy()[this_week],
        }
    )
    flags = flags.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return AnomalyResult(weeks, customers, flags, last_week, threshold)


# -- the pieces -----------------------------------------------------------------------------------


@cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for the process. Each call works in a cursor of its own (with its
    own registered frame): a cursor costs microseconds, a new database tens of milliseconds."""
    return duckdb.connect()


def _naive(stamp: pd.Timestamp) -> pd.Timestamp:
    """A time-zone-aware instant as its wall-clock time (as the events' timestamps are read)."""
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


def _checked(events: pd.DataFrame) -> pd.DataFrame:
    """The columns :func:`customer_weeks` reads, with a naive timestamp; a TailorError if not."""
    missing = [c for c in REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise TailorError(f"events: missing column(s) {', '.join(missing)}")
    frame = events.loc[:, list(REQUIRED_COLUMNS)]
    stamp = frame["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(stamp):
        raise TailorError(f"events: column 'timestamp' must hold datetimes, not {stamp.dtype}")
    if isinstance(stamp.dtype, pd.DatetimeTZDtype):
        frame = frame.assign(timestamp=stamp.dt.tz_localize(None))
    return frame


def _positions(customer_id: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by customer: the first row of each customer, shape (n_customers,), and
    each row's position within its customer, shape (n_rows,) (0 for their first week)."""
    ids = customer_id.to_numpy()
    new = np.ones(len(ids), dtype=bool)
    new[1:] = ids[1:] != ids[:-1]
    starts = np.flatnonzero(new)
    return starts, np.arange(len(ids)) - starts[np.cumsum(new) - 1]


def _hours_from_usual(
    hours: np.ndarray, pos: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each week's events from the customer's usual hours of the day.

    Parameters
    ----------
    hours : ndarray of shape (n_weeks, 24)
        Events of each customer-week per hour of the day; rows sorted by customer and week.
    pos : ndarray of shape (n_weeks,)
        Position of each row within its customer.
    window : int
        Previous active weeks that define the usual hours.

    Returns
    -------
    distance : ndarray of shape (n_weeks,)
        Mean over the week's events of the hours (0-12) to the nearest usual hour; NaN in a
        customer's first week.
    hour : ndarray of shape (n_weeks,)
        The hour contributing most to the distance; -1 when it is 0.
    """
    n = len(hours)
    cum = np.zeros((n + 1, 24), dtype=np.int64)
    np.cumsum(hours, axis=0, out=cum[1:])
    rows = np.arange(n)
    prior = cum[rows] - cum[rows - np.minimum(pos, window)]
    usual = (prior >= USUAL_HOUR_SHARE * prior.sum(axis=1, keepdims=True)) & (prior > 0)
    usual |= (prior == prior.max(axis=1, keepdims=True)) & (prior > 0)
    # Distance around the clock to the nearest usual hour: over two days of hours, the last
    # usual hour at or before each hour and the next one at or after it.
    # Hours run down the first axis, so that each accumulate step is one vector operation.
    clock = np.arange(48, dtype=np.int16)[:, None]
    twice = np.concatenate([usual.T, usual.T])
    before = np.maximum.accumulate(np.where(twice, clock, -48), axis=0)[24:]
    after = np.minimum.accumulate(np.where(twice, clock, 96)[::-1], axis=0)[::-1][:24]
    distance = np.minimum(clock[24:] - before, after - clock[:24]).T
    far = hours * distance
    seen = usual.any(axis=1)
    total = np.where(seen, far.sum(axis=1), np.nan)
    mean = total / np.maximum(hours.sum(axis=1), 1)
    hour = np.where(seen & (far.max(axis=1, initial=0) > 0), far.argmax(axis=1) if n else 0, -1)
    return mean, hour.astype(np.int64)


def _comparable(
    x: np.ndarray, kind: str, money_unit: float
) -> tuple[np.ndarray, tuple[float, float]]:
    """A feature on the scale it is compared on, and the bounds of the z's scale there."""
    if kind == "money":
        offset = MONEY_OFFSET * money_unit
    elif kind == "count":
        offset = 1.0
    else:
        return x, (SHARE_FLOOR if kind == "share" else HOURS_FLOOR, np.inf)
    bounds = (float(np.log(RATIO_FLOOR)), float(np.log(RATIO_CAP)))
    return np.log(np.maximum(x, 0.0) + offset), bounds


def _middle(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two middle values of each row ignoring NaN (equal for an odd count; NaN for a row
    of NaN), shapes (n_rows,): one sort, no Python loop."""
    ordered = np.sort(block, axis=1)  # NaN sort last
    n = (~np.isnan(block)).sum(axis=1)
    lo = np.take_along_axis(ordered, np.maximum((n - 1) // 2, 0)[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(ordered, np.minimum(n // 2, block.shape[1] - 1)[:, None], axis=1)
    return lo, hi[:, 0]


def _prior_median_mad(
    t: np.ndarray, pos: np.ndarray, rows: np.ndarray, window: int, x: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and MAD of ``t`` over the up to ``window`` rows before each of ``rows`` within
    the same customer (rows sorted by customer and week; NaN ignored), and the median of ``x``
    over the same rows (``x``: the values before a monotone transform into ``t``; default
    ``t``).

    Returns three arrays of shape (len(rows),).
    """
    lags = np.arange(1, window + 1)
    inside = lags[None, :] <= pos[rows][:, None]
    before = (rows[:, None] - lags[None, :])[inside]
    block = np.full(inside.shape, np.nan)
    block[inside] = t[before]
    median = np.mean(_middle(block), axis=0)
    mad = np.mean(_middle(np.abs(block - median[:, None])), axis=0)
    if x is None:
        return median, mad, median
    block[inside] = x[before]
    return median, mad, np.mean(_middle(block), axis=0)


def _robust_z(
    t: np.ndarray, median: np.ndarray, mad: np.ndarray, bounds: tuple[float, float]
) -> np.ndarray:
    """One-sided robust z, ``(t - median) / clip(1.4826 * MAD, *bounds)``, >= 0 and finite."""
    scale = np.clip(SCALED_MAD * np.nan_to_num(mad), *bounds)
    z = (t - median) / scale
    return np.clip(np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0), 0.0, None)


def _latest(
    weekly: pd.DataFrame, weeks: pd.DataFrame, starts: np.ndarray, scored: np.ndarray
) -> pd.DataFrame:
    """One row per customer about their latest active week."""
    n = len(weekly)
    last = np.r_[starts[1:] - 1, n - 1] if n else np.zeros(0, dtype=np.int64)
    at = np.full(n, -1)
    at[scored] = np.arange(len(scored))
    row = at[last]
    known = row >= 0
    score = np.zeros(len(last))
    score[known] = weeks["score"].to_numpy()[row[known]]
    feature = np.full(len(last), "", dtype=object)
    feature[known] = weeks["feature"].to_numpy()[row[known]]
    reason = np.full(len(last), "not enough history", dtype=object)
    reason[known] = weeks["reason"].to_numpy()[row[known]]
    return pd.DataFrame(
        {
            "customer_id": weekly["customer_id"].to_numpy()[last],
            "anomaly_week": weekly["week_start"].to_numpy()[last],
            "anomaly_score": score,
            "anomaly_feature": feature,
            "anomaly_reason": reason,
        }
    )


def _last_week(weekly: pd.DataFrame, as_of: pd.Timestamp | None) -> pd.Timestamp | None:
    """Monday 00:00 of the week holding the instant before ``as_of``, else the latest week."""
    if as_of is not None:
        instant = _naive(pd.Timestamp(as_of)) - pd.Timedelta(1, "ns")
        return (instant - pd.Timedelta(days=instant.day_of_week)).normalize()
    if weekly.empty:
        return None
    return pd.Timestamp(weekly["week_start"].max())


# -- reasons --------------------------------------------------------------------------------------


def _cat(*parts: np.ndarray | str) -> np.ndarray:
    """Element-wise concatenation of string arrays and strings."""
    out = np.asarray(parts[0], dtype=str)
    for part in parts[1:]:
        out = np.char.add(out, np.asarray(part, dtype=str))
    return out


def _fill(template: str, **parts: np.ndarray) -> np.ndarray:
    """``template`` with each ``{name}`` replaced element-wise by ``parts[name]``."""
    pieces = re.split(r"\{(\w+)\}", template)  # text, name, text, name, ..., text
    return _cat(*(parts[p] if i % 2 else p for i, p in enumerate(pieces)))


def _number(x: np.ndarray, kind: str, currency: str) -> np.ndarray:
    """Values as told: money ``$412`` (with cents below 10), counts and hours ``140`` or
    ``2.5``, shares ``45%``."""
    x = np.asarray(x, dtype=float)
    if kind == "share":
        return np.char.mod("%.0f%%", 100 * x)
    if kind == "money":
        whole = np.abs(x) >= 10
        return np.char.add(
            currency, np.where(whole, np.char.mod("%.0f", x), np.char.mod("%.2f", x))
        )
    whole = np.isclose(x, np.round(x)) | (np.abs(x) >= 100)
    return np.where(whole, np.char.mod("%.0f", x), np.char.mod("%.1f", x))


def _reasons(
    weeks: pd.DataFrame,
    z_all: np.ndarray,
    names: list[str],
    top: np.ndarray,
    value: np.ndarray,
    usual: np.ndarray,
    threshold: float,
    currency: str,
) -> np.ndarray:
    """A sentence for every flagged week ("" for the others), built column-wise per feature:
    the most unusual feature with its value and its usual, then the other features above the
    threshold ("; also unusual: items, events")."""
    reasons = np.full(len(weeks), "", dtype=object)
    flagged = np.flatnonzero(z_all.max(axis=1, initial=0.0) > threshold)
    if not len(flagged):
        return reasons
    week = np.datetime_as_string(weeks["week_start"].to_numpy()[flagged].astype("datetime64[D]"))
    own = len(FEATURES)  # columns of z_all from `own` on compare with the population
    text = np.full(len(flagged), "", dtype=object)
    for k, name in enumerate(names):
        here = top[flagged] == k
        if not here.any():
            continue
        feature, rows = FEATURES[name], flagged[here]
        v, u = value[rows], usual[rows]
        hour = np.char.zfill(weeks["unusual_hour"].to_numpy()[rows].astype(str), 2)
        said = _fill(feature.phrase, v=_number(v, feature.kind, currency), week=week[here], h=hour)
        if name == "returns_rate":  # returns with no purchase that week
            returned = _number(weeks["returned"].to_numpy()[rows], "money", currency)
            none_bought = _fill(
                "returned {r} without buying anything in the week of {week}",
                r=returned,
                week=week[here],
            )
            said = np.where(weeks["spend"].to_numpy()[rows] > 0, said, none_bought)
        usual_text = _number(u, feature.kind, currency)
        if k >= own:
            said = _cat(said, "; most customers ", usual_text)
        elif feature.kind == "hours":
            said = np.where(u >= 0.05, _cat(said, "; usually ", usual_text, " hours"), said)
        elif feature.kind == "share":
            said = _cat(said, "; usually ", usual_text)
        else:
            ratio = np.char.mod("%.1f", v / np.where(u > 0, u, 1.0))
            said = np.where(
                u > 0,
                _cat(said, ", ", ratio, "x their usual ", usual_text),
                _cat(said, "; usually ", usual_text),
            )
        text[here] = said
    also = np.full(len(flagged), "", dtype=object)
    for name in dict.fromkeys(names):  # a feature compared twice (own, population) is named once
        same = [j for j, other in enumerate(names) if other == name]
        above = (z_all[flagged][:, same] > threshold).any(axis=1) & ~np.isin(top[flagged], same)
        label = FEATURES[name].label
        also = np.where(above, np.where(also == "", label, _cat(also, ", ", label)), also)
    reasons[flagged] = np.where(also == "", text, _cat(text, "; also unusual: ", also))
    return reasons
