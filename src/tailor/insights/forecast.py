"""Weekly sales forecasts, in total or by department, with prediction intervals, backtested
against two baselines.

History
    :func:`weekly_sales` sums the spend of purchase events per week (Monday to Sunday) in
    DuckDB. Spend is as in :mod:`tailor.customers.features`: the event's ``value`` or, where a
    file gave none, quantity x the item's catalogue ``price``. A week the data does not cover
    from Monday to Sunday (the first and the last, usually) is dropped, so that an edge week does
    not read as a crash in sales; a week without a sale inside the range is 0.

Model (``"ets"``)
    Exponential smoothing (statsmodels ``ETSModel``, additive errors) fitted to each series, the
    configuration chosen by AICc among ETS(A,N,N) (level), ETS(A,A,N) (trend) and ETS(A,Ad,N)
    (damped trend), and, with at least two full years of history, ETS(A,N,A) and ETS(A,Ad,A)
    with a 52-week season. Prediction intervals are the model's (analytic for additive ETS).
    A seasonal ETS has 51 free initial states: statsmodels cannot estimate that many reliably,
    so seasonal configurations start from its heuristic (Hyndman et al. 2008, s. 2.6) and AICc
    counts those states as parameters all the same. A constant series (all zero, say) is
    forecast as that constant; a series shorter than ``MIN_ETS_WEEKS`` as its last value with
    random-walk intervals. Forecasts and bounds are clipped at 0: sales are not negative.
    A LightGBM on lags was left out: a few years of weekly sales are 50-150 points per series,
    too few for trees, and trees cannot extrapolate a trend.

Baselines
    ``seasonal_naive`` repeats the last season: 52 weeks when the history holds at least two
    years (104 weeks), else a 4-week cycle (about a month, pay-day rhythms) since a yearly
    season cannot be shown from under two. ``last_value`` repeats the last week.

Backtest
    Rolling origin: the last ``backtest_windows`` blocks of ``horizon_weeks`` weeks are each
    forecast from the weeks before them (the model re-chosen at each origin). Per series and
    model, ``mase`` and ``smape`` are the means over the windows.

    * MASE: mean absolute error / the in-sample mean absolute error of the one-step naive
      forecast on that window's training weeks (Hyndman & Koehler 2006). Below 1 is better than
      last week's sales were, one step ahead, in the past. Every model of a series shares the
      scale, so within a series it ranks models as the MAE does. NaN when the training weeks are
      constant.
    * sMAPE, in percent (0-200): mean of 200 |y - f| / (|y| + |f|); a week where both are 0
      counts 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.tools.eval_measures import aicc as aicc_of
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from threadpoolctl import threadpool_limits

from tailor.dataset import as_of_bound
from tailor.errors import ConfigError, TailorError
from tailor.store.schema import ANALYTICS_CONSENTED
from tailor.store.warehouse import Warehouse

MODEL = "ets"
BASELINES = ("seasonal_naive", "last_value")
YEAR = 52
SHORT_SEASON = 4
"""The seasonal-naive cycle under two years of history: about a month of weeks."""
MIN_TRAIN_WEEKS = 8
"""Least weeks of history before the first backtest origin."""
MIN_ETS_WEEKS = 8
"""Under this many weeks, a series is forecast as its last value (random-walk intervals)."""
DEFAULT_TOP = 8
BACKTEST_WINDOWS = 3
TOTAL = "total"

# The columns ``by`` may name: a text column of the catalogue, and its plural for notes.
BY_COLUMNS = {"department": "i.department", "category": "i.category"}
PLURALS = {"department": "departments", "category": "categories"}


class ForecastError(TailorError):
    """The warehouse holds too little sales history for the forecast asked for."""


@dataclass(frozen=True)
class _Config:
    name: str
    trend: bool = False
    damped: bool = False
    seasonal: bool = False


CONFIGS = (
    _Config("ETS(A,N,N)"),
    _Config("ETS(A,A,N)", trend=True),
    _Config("ETS(A,Ad,N)", trend=True, damped=True),
    _Config("ETS(A,N,A)", seasonal=True),
    _Config("ETS(A,Ad,A)", trend=True, damped=True, seasonal=True),
)


# -- history ---------------------------------------------------------------------------------


def weekly_sales(wh: Warehouse, by: str | None = None, as_of: Any = None) -> pd.DataFrame:
    """Sales per week, in total or per value of a catalogue column.

    Parameters
    ----------
    wh : Warehouse
    by : {None, "department", "category"}
        None: one series, ``"total"``; otherwise one series per department (or category), an
        item without one, or unknown to the catalogue, under ``"unknown"``.
    as_of : str, date or Timestamp, optional
        Only purchases up to this date (see :func:`tailor.dataset.as_of_bound`).

    Returns
    -------
    DataFrame with columns ``series`` (str), ``week`` (Timestamp, the Monday) and ``sales``
    (float, the shop's currency), sorted by series and week: every series has every full week
    from the first to the last, 0 where nothing sold; empty without a full week.
    """
    if by is not None and by not in BY_COLUMNS:
        raise ConfigError(
            f"by {by!r}: forecast by {' or '.join(BY_COLUMNS)}, or give none for the total"
        )
    series = (
        f"'{TOTAL}'"
        if by is None
        else f"coalesce(nullif(trim(CAST({BY_COLUMNS[by]} AS VARCHAR)), ''), 'unknown')"
    )
    bound = as_of_bound(as_of)
    params: dict[str, Any] = {"bound": datetime(9999, 12, 31), "last_day": date(9999, 12, 31)}
    if bound is not None:
        # The last day the cut shows whole: a cut inside a day leaves that day partial.
        params = {"bound": bound.to_pydatetime(), "last_day": (bound - timedelta(days=1)).date()}
    frame = wh.con.execute(_WEEKLY_SQL.replace("$series", series), params).df()
    frame["series"] = frame["series"].astype(str)
    frame["week"] = pd.to_datetime(frame["week"]).astype("datetime64[ns]")
    frame["sales"] = frame["sales"].astype(float)
    return frame.reset_index(drop=True)


_WEEKLY_SQL = f"""
WITH purchases AS (
    SELECT CAST(e.timestamp AS DATE) AS day, $series AS series,
           CAST(coalesce(e.value, coalesce(e.quantity, 1) * i.price, 0) AS DOUBLE) AS spend
    FROM events e LEFT JOIN items i USING (item_id)
    WHERE e.event_type = 'purchase' AND e.timestamp < $bound AND e.{ANALYTICS_CONSENTED}
), covered AS (
    SELECT min(day) AS first_day, least(max(day), $last_day) AS last_day FROM purchases
), weeks AS (
    -- Mondays from the first on or after the first day to the last whose Sunday is covered.
    SELECT CAST(monday AS DATE) AS week FROM covered, range(
        CAST(date_trunc('week', first_day + 6) AS TIMESTAMP),
        CAST(last_day - 5 AS TIMESTAMP), INTERVAL 7 DAY) AS t(monday)
), sold AS (
    SELECT series, CAST(date_trunc('week', day) AS DATE) AS week, sum(spend) AS sales
    FROM purchases GROUP BY ALL
), names AS (
    SELECT DISTINCT series FROM sold JOIN weeks USING (week)
)
SELECT n.series, w.week, coalesce(s.sales, 0) AS sales
FROM weeks w CROSS JOIN names n LEFT JOIN sold s ON s.series = n.series AND s.week = w.week
ORDER BY n.series, w.week
"""


# -- metrics and baselines -------------------------------------------------------------------


def mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray) -> float:
    """Mean absolute scaled error: MAE of ``forecast`` / in-sample MAE of the one-step naive
    forecast on ``train`` (NaN when ``train`` has under 2 weeks or never changes)."""
    train = np.asarray(train, dtype=float)
    scale = np.mean(np.abs(np.diff(train))) if len(train) > 1 else 0.0
    if scale == 0:
        return float("nan")
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(forecast))) / scale)


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0-200): mean of 200 |y - f| / (|y| + |f|), 0 where both are
    0."""
    actual = np.asarray(actual, dtype=float)
    forecast = np.asarray(forecast, dtype=float)
    denominator = np.abs(actual) + np.abs(forecast)
    terms = np.divide(
        200 * np.abs(actual - forecast),
        denominator,
        out=np.zeros_like(denominator),
        where=denominator > 0,
    )
    return float(np.mean(terms))


def seasonal_naive(train: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """The last ``season`` weeks repeated: step k is ``train[-season + (k - 1) % season]``."""
    train = np.asarray(train, dtype=float)
    if len(train) < season:
        raise ValueError(f"seasonal naive of season {season} needs {season} weeks")
    return np.resize(train[len(train) - season :], horizon)


def last_value(train: np.ndarray, horizon: int) -> np.ndarray:
    """The last week repeated ``horizon`` times."""
    return np.full(horizon, float(np.asarray(train)[-1]))


def season_for(n_weeks: int) -> int:
    """The seasonal-naive cycle: a year with two years of history, else ``SHORT_SEASON``."""
    return YEAR if n_weeks >= 2 * YEAR else SHORT_SEASON


# -- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """A forecast of ``horizon`` weeks: arrays of shape (horizon,) and the model's name."""

    forecast: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    model: str


def fit_predict(train: np.ndarray, horizon: int, level: float = 0.9) -> Prediction:
    """Forecast ``horizon`` weeks after ``train`` with the ETS configuration of least AICc
    (see the module docstring), with ``level`` prediction intervals, clipped at 0."""
    train = np.asarray(train, dtype=float)
    if np.ptp(train) == 0:
        flat = np.full(horizon, train[-1])
        return Prediction(flat, flat.copy(), flat.copy(), "constant")
    # Additive ETS is unchanged by shifting and scaling the data, and the optimiser finds the
    # likelihood's optimum far more reliably on standard units than on sales of 1e5.
    centre, scale = train.mean(), train.std()
    standard = (train - centre) / scale
    best = None
    if len(train) >= MIN_ETS_WEEKS:
        for config in CONFIGS:
            if config.seasonal and len(train) < 2 * YEAR:
                continue
            result, score = _fit(standard, config)
            if result is not None and (best is None or score < best[0]):
                best = (score, config, result)
    if best is None:
        return _random_walk(train, horizon, level)
    _, config, result = best
    n = len(train)
    frame = result.get_prediction(start=n, end=n + horizon - 1).summary_frame(alpha=1 - level)
    mean, lower, upper = (
        centre + scale * frame[column].to_numpy(dtype=float)
        for column in ("mean", "pi_lower", "pi_upper")
    )
    if not np.all(np.isfinite(mean)):
        return _random_walk(train, horizon, level)
    return Prediction(*(np.clip(a, 0, None) for a in (mean, lower, upper)), config.name)


def _fit(train: np.ndarray, config: _Config) -> tuple[Any, float]:
    """The fitted ETS of ``config`` and its AICc; (None, inf) when it cannot be fitted."""
    initialization = "heuristic" if config.seasonal else "estimated"
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # convergence chatter on short or flat series
            model = ETSModel(
                pd.Series(train),
                error="add",
                trend="add" if config.trend else None,
                damped_trend=config.damped,
                seasonal="add" if config.seasonal else None,
                seasonal_periods=YEAR if config.seasonal else None,
                initialization_method=initialization,
            )
            result = model.fit(disp=False)
    except (ValueError, np.linalg.LinAlgError):
        return None, float("inf")
    # Heuristic initial states are parameters too: level, trend, and a season less one.
    unestimated = (1 + config.trend + YEAR - 1) if initialization == "heuristic" else 0
    k = result.df_model + unestimated
    n = len(train)
    score = aicc_of(result.llf, n, k) if n - k - 1 > 0 else float("inf")
    return result, (float(score) if np.isfinite(score) else float("inf"))


def _random_walk(train: np.ndarray, horizon: int, level: float) -> Prediction:
    """Last value, with the random walk's intervals from the spread of weekly changes."""
    changes = np.diff(train)
    spread = float(np.std(changes, ddof=1)) if len(changes) > 1 else 0.0
    half = norm.ppf(0.5 + level / 2) * spread * np.sqrt(np.arange(1, horizon + 1))
    flat = last_value(train, horizon)
    return Prediction(flat, np.clip(flat - half, 0, None), flat + half, "last value")


# -- backtest --------------------------------------------------------------------------------


def backtest(
    sales: np.ndarray, horizon: int, windows: int, season: int, level: float = 0.9
) -> pd.DataFrame:
    """Rolling-origin backtest of one series: the model and both baselines on each of the last
    ``windows`` blocks of ``horizon`` weeks, fitted on the weeks before the block.

    Returns
    -------
    DataFrame with columns ``model`` (``MODEL``, then ``BASELINES``), ``mase`` and ``smape``
    (percent), the means over the windows.
    """
    sales = np.asarray(sales, dtype=float)
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in (MODEL, *BASELINES)}
    for origin in len(sales) - horizon * np.arange(windows, 0, -1):
        train, actual = sales[:origin], sales[origin : origin + horizon]
        forecasts = {
            MODEL: fit_predict(train, horizon, level).forecast,
            "seasonal_naive": seasonal_naive(train, horizon, season),
            "last_value": last_value(train, horizon),
        }
        for name, forecast in forecasts.items():
            scores[name].append((mase(actual, forecast, train), smape(actual, forecast)))
    rows = [
        {"model": name, "mase": _mean(s[0] for s in found), "smape": _mean(s[1] for s in found)}
        for name, found in scores.items()
    ]
    return pd.DataFrame(rows, columns=["model", "mase", "smape"])


def _mean(values: Any) -> float:
    """Mean of the finite values; NaN when there are none."""
    found = np.array(list(values), dtype=float)
    found = found[np.isfinite(found)]
    return float(found.mean()) if len(found) else float("nan")


# -- the forecast ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesForecast:
    """Weekly sales forecasts, the history they came from and their backtest.

    Attributes
    ----------
    history : DataFrame
        ``series``, ``week`` (Monday), ``sales``: the full weeks of each series forecast.
    forecasts : DataFrame
        ``series``, ``week``, ``forecast``, ``lower``, ``upper``: ``horizon_weeks`` rows per
        series; the bounds hold ``level`` of the outcomes, by the model.
    backtest : DataFrame
        ``series``, ``model``, ``mase``, ``smape`` (percent): one row per series and model
        (``"ets"``, ``"seasonal_naive"``, ``"last_value"``).
    model : str
        The model in words, with the configuration chosen for each series.
    models : dict
        Series -> the configuration its forecast used, e.g. ``"ETS(A,N,N)"``.
    """

    history: pd.DataFrame
    forecasts: pd.DataFrame
    backtest: pd.DataFrame
    model: str
    models: dict[str, str]
    horizon_weeks: int
    backtest_windows: int
    level: float
    season_weeks: int
    by: str | None = None
    top: int | None = None
    n_groups: int = 0
    notes: list[str] = field(default_factory=list)

    def beats_baselines(self) -> dict[str, bool]:
        """Series -> whether the model's backtest MASE is below both baselines'."""
        wide = self.backtest.pivot(index="series", columns="model", values="mase")
        beats = (wide[MODEL] < wide[list(BASELINES)].min(axis=1)).to_dict()
        return {str(s): bool(beats[s]) for s in self.backtest["series"].unique()}

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready values (weeks as ``YYYY-MM-DD``, NaN as None)."""
        return {
            "by": self.by,
            "horizon_weeks": self.horizon_weeks,
            "level": self.level,
            "backtest_windows": self.backtest_windows,
            "season_weeks": self.season_weeks,
            "model": self.model,
            "models": self.models,
            "series": list(self.models),
            "top": self.top,
            "groups": self.n_groups,
            "notes": self.notes,
            "first_week": _day(self.history["week"].min()),
            "last_week": _day(self.history["week"].max()),
            "beats_baselines": self.beats_baselines(),
            "backtest": _records(self.backtest),
            "forecasts": _records(self.forecasts),
            "history": _records(self.history),
        }


def forecast_sales(
    wh: Warehouse,
    horizon_weeks: int = 8,
    by: str | None = None,
    backtest_windows: int = BACKTEST_WINDOWS,
    level: float = 0.9,
    top: int | None = DEFAULT_TOP,
    as_of: Any = None,
) -> SalesForecast:
    """Forecast weekly sales ``horizon_weeks`` ahead and backtest the forecasts.

    Parameters
    ----------
    wh : Warehouse
    horizon_weeks : int
        Weeks forecast, and the length of each backtest window.
    by : {None, "department", "category"}
        None: total sales only; otherwise the total and each of the ``top`` departments (or
        categories) of most sales.
    backtest_windows : int
        Rolling-origin windows; fewer when the history is short (said in ``notes``).
    level : float
        Share of outcomes the prediction intervals hold, in (0, 1).
    top : int, optional
        With ``by``, the number of groups forecast besides the total (None: all).
    as_of : str, date or Timestamp, optional
        Forecast from the purchases up to this date.
    """
    if horizon_weeks < 1:
        raise ConfigError(f"horizon_weeks {horizon_weeks}: forecast at least 1 week")
    if backtest_windows < 1:
        raise ConfigError(f"backtest_windows {backtest_windows}: backtest at least 1 window")
    if not 0 < level < 1:
        raise ConfigError(f"level {level}: give the interval's coverage in (0, 1), e.g. 0.9")
    if top is not None and top < 1:
        raise ConfigError(f"top {top}: forecast at least 1 {by or 'group'}")
    sales = weekly_sales(wh, by, as_of)
    history, n_groups = _series(sales, by, top)
    weeks = history["week"].drop_duplicates().sort_values().reset_index(drop=True)
    n = len(weeks)
    season = season_for(n)
    shortest = max(MIN_TRAIN_WEEKS, season)
    windows = min(backtest_windows, (n - shortest) // horizon_weeks)
    if windows < 1:
        span = f" ({_day(weeks.iloc[0])} to {_day(weeks.iloc[-1])})" if n else ""
        raise ForecastError(
            f"{n} full weeks of sales{span}: a {horizon_weeks}-week forecast with its backtest "
            f"needs at least {shortest + horizon_weeks}; lower --horizon-weeks or load more "
            "history"
        )
    notes = []
    if windows < backtest_windows:
        notes.append(f"backtest over {windows} windows, not {backtest_windows}: {n} weeks")
    names = list(dict.fromkeys(history["series"]))
    if by is not None and n_groups > len(names) - 1:
        shown = len(names) - 1
        notes.append(f"the {shown} {PLURALS[by]} of most sales of {n_groups}, and the total")
    matrix = history.pivot(index="week", columns="series", values="sales")[names].to_numpy()
    future = weeks.iloc[-1] + pd.to_timedelta(7 * np.arange(1, horizon_weeks + 1), unit="D")
    forecasts, scores, models = [], [], {}
    # Tiny matrices: BLAS threads cost more than they save (4x slower on 2 busy cores).
    with threadpool_limits(1):
        for column, name in enumerate(names):  # a few series
            values = matrix[:, column]
            found = fit_predict(values, horizon_weeks, level)
            models[name] = found.model
            forecasts.append(
                pd.DataFrame(
                    {
                        "series": name,
                        "week": future,
                        "forecast": found.forecast,
                        "lower": found.lower,
                        "upper": found.upper,
                    }
                )
            )
            scores.append(
                backtest(values, horizon_weeks, windows, season, level).assign(series=name)
            )
    chosen = "; ".join(f"{name}: {model}" for name, model in models.items())
    return SalesForecast(
        history=history,
        forecasts=pd.concat(forecasts, ignore_index=True),
        backtest=pd.concat(scores, ignore_index=True)[["series", "model", "mase", "smape"]],
        model=f"ETS (statsmodels), configuration chosen by AICc per series; {chosen}",
        models=models,
        horizon_weeks=horizon_weeks,
        backtest_windows=windows,
        level=level,
        season_weeks=season,
        by=by,
        top=top if by else None,
        n_groups=n_groups,
        notes=notes,
    )


def _series(sales: pd.DataFrame, by: str | None, top: int | None) -> tuple[pd.DataFrame, int]:
    """With ``by``, the total and the ``top`` groups of most sales (all when None), total
    first, then by sales; and the number of groups there were."""
    if sales.empty:
        raise ForecastError("no full week of purchases in the warehouse; load sales history")
    if by is None:
        return sales, 0
    size = sales.groupby("series")["sales"].sum().sort_index()
    ranked = size.sort_values(ascending=False, kind="stable").index
    kept = list(ranked if top is None else ranked[:top])
    total = sales.groupby("week", as_index=False)["sales"].sum().assign(series=TOTAL)
    history = pd.concat([total[["series", "week", "sales"]], sales], ignore_index=True)
    rank = history["series"].map({name: r for r, name in enumerate([TOTAL, *kept])})
    history = history.assign(rank=rank).dropna(subset=["rank"]).sort_values(["rank", "week"])
    return history.drop(columns="rank").reset_index(drop=True), len(size)


def _day(stamp: Any) -> str:
    return pd.Timestamp(stamp).date().isoformat()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    plain = frame.copy()
    if "week" in plain:
        plain["week"] = plain["week"].dt.strftime("%Y-%m-%d")
    plain = plain.astype(object).where(plain.notna(), None)
    return plain.to_dict(orient="records")
