"""Customer lifetime value: how many more times a customer will buy, and for how much.

Two classic models, fitted by maximum likelihood:

* :class:`BetaGeo`, the BG/NBD model of Fader, Hardie & Lee (2005), "Counting your customers the
  easy way": while alive a customer buys at a Poisson rate (Gamma(r, alpha) across customers) and
  after each purchase drops out with probability p (Beta(a, b) across customers);
* :class:`GammaGamma`, the spend model of Fader, Hardie & Lee (2005), "RFM and customer lifetime
  value": the value of a customer's purchases is Gamma(p, nu) around a mean that varies as
  Gamma(q, gamma) across customers.

Both work on the summary of :func:`summarize`, one row per customer, where a purchase is a *day*
with purchases (the values of a day summed): frequency (repeat purchase days), recency and T
(days), monetary (mean value of a repeat purchase day). :func:`clv_report` fits both on the
purchases before a date and, when later purchases exist, checks the prediction against them.

The likelihoods are short and written here with :mod:`scipy.special` (``gammaln``, ``betaln``,
``hyp2f1``) and :func:`scipy.optimize.minimize`: the ``lifetimes`` package that implements them
is in maintenance mode and needs autograd and dill, and its successor PyMC-Marketing brings a
probabilistic-programming stack for what is a fit of four parameters.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from tailor.errors import TailorError

DAY = pd.Timedelta(days=1)
PURCHASE_COLUMNS = ("customer_id", "timestamp", "value")
# (a - 1) divides the expected number of purchases: closer to 1 than this, a is moved to this
# distance, which balances the error of moving it against the cancellation in 1 - 2F1 (~1e-8).
NEAR_ONE = 1e-8
# Discounted CLV sums the expected purchases month by month, each discounted at mid-month.
DISCOUNT_STEP_DAYS = 30.0


def _floats(values: ArrayLike, name: str) -> NDArray[np.float64]:
    array = np.asarray(values, dtype=float).ravel()
    if not np.isfinite(array).all():
        raise TailorError(f"{name}: every value must be a finite number")
    return array


def _check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    x, t_x, big_t = _floats(frequency, "frequency"), _floats(recency, "recency"), _floats(T, "T")
    if not len(x) == len(t_x) == len(big_t):
        raise TailorError(
            f"frequency, recency and T must have one value per customer "
            f"(got {len(x)}, {len(t_x)} and {len(big_t)})"
        )
    if (x < 0).any() or (t_x < 0).any():
        raise TailorError("frequency and recency must be >= 0")
    if (t_x > big_t).any():
        raise TailorError("recency must be <= T (the last purchase lies inside the observation)")
    if ((x == 0) & (t_x != 0)).any():
        raise TailorError("recency must be 0 for a customer without repeat purchases")
    return x, t_x, big_t


def _optimize(
    objective: Any,
    start: NDArray[np.float64],
    names: tuple[str, ...],
    model: str,
    n_customers: int,
) -> tuple[dict[str, float], float]:
    """Minimize ``objective(log_params) -> (value, gradient)``; the fitted params and the value."""
    # The line search may try parameters that overflow; it backs off from them by itself.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        result = minimize(
            objective, start, jac=True, method="L-BFGS-B", options={"ftol": 1e-12, "gtol": 1e-8}
        )
        params = np.exp(result.x)
        value, _ = objective(result.x)
    # A likelihood that grows without end (e.g. spend with no heterogeneity: q and gamma run off
    # together) still predicts well from where the search stops; only overflow is an error.
    if not (np.isfinite(value) and np.isfinite(params).all()):
        fitted = ", ".join(f"{n} = {v:.3g}" for n, v in zip(names, params, strict=True))
        raise TailorError(
            f"{model}: the likelihood has no maximum on these {n_customers} customers ({fitted}; "
            f"{result.message}); too few customers or too alike: fit more, or use a penalizer"
        )
    return dict(zip(names, params.tolist(), strict=True)), float(value)


class BetaGeo:
    """BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005).

    Time is in the unit of ``recency`` and ``T`` (days in Tailor, weeks in the paper).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (``penalizer * sum(params ** 2)`` added to the mean negative
        log-likelihood per customer); 0 is plain maximum likelihood.

    Attributes
    ----------
    params_ : dict
        ``r`` and ``alpha`` (Gamma shape and rate of the purchase rate; ``r / alpha`` is the mean
        purchases per time unit of an alive customer), ``a`` and ``b`` (Beta of the drop-out
        probability after each purchase).
    log_likelihood_ : float
        Total log-likelihood of the fitted data.
    n_customers_ : int
        Customers fitted.
    """

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def fit(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> BetaGeo:
        """Fit the parameters by maximum likelihood.

        Parameters
        ----------
        frequency : array-like of shape (n_customers,)
            Repeat purchases (purchases after the first).
        recency : array-like of shape (n_customers,)
            Time from the first to the last purchase (0 without repeat purchases).
        T : array-like of shape (n_customers,)
            Time from the first purchase to the end of observation.

        Returns
        -------
        self : BetaGeo
        """
        x, t_x, big_t = _check_rfm(frequency, recency, T)
        if len(x) == 0:
            raise TailorError("BG/NBD needs at least one customer")
        # The special functions depend on a customer only through x, and the logarithms only
        # through T or t_x: computed once per distinct value (a few hundred with whole days),
        # so an evaluation costs a few array operations per customer, not a few special functions.
        xs, x_at = np.unique(x, return_inverse=True)
        ts, t_at = np.unique(big_t, return_inverse=True)
        txs, tx_at = np.unique(t_x, return_inverse=True)
        weight = np.full(len(x), 1 / len(x))
        weight_x = np.bincount(x_at, weight, minlength=len(xs))
        repeat = x > 0
        xs_m1 = np.maximum(xs - 1, 0.0)  # b + x - 1 only matters where x > 0
        penalizer = self.penalizer

        def objective(log_params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            r, alpha, a, b = np.exp(log_params)
            log_t, log_tx = np.log(alpha + ts), np.log(alpha + txs)
            beta_t, beta_tx = betaln(a, b + xs), betaln(a + 1, b + xs_m1)
            r_x = r + x
            # log L = A1 + log(exp(term_t) + exp(term_tx)), the second only where x > 0 (FHL 2005)
            term_t = beta_t[x_at] - r_x * log_t[t_at]
            term_tx = np.where(repeat, beta_tx[x_at] - r_x * log_tx[tx_at], -np.inf)
            both = np.logaddexp(term_t, term_tx)
            base = r * np.log(alpha) - gammaln(r) - betaln(a, b)
            loglik = weight_x @ gammaln(r + xs) + base + weight @ both
            # Gradient: each term weighs its share of the likelihood, exp(term - both).
            share_t = weight * np.exp(term_t - both)
            share_tx = weight - share_t
            share_t_x = np.bincount(x_at, share_t, minlength=len(xs))
            share_tx_x = weight_x - share_t_x
            psi_abx = digamma(a + b + xs)
            grad = np.array(
                [
                    weight_x @ digamma(r + xs)
                    - digamma(r)
                    + np.log(alpha)
                    - share_t @ log_t[t_at]
                    - share_tx @ log_tx[tx_at],
                    r / alpha
                    - (share_t * r_x) @ (1 / (alpha + ts))[t_at]
                    - (share_tx * r_x) @ (1 / (alpha + txs))[tx_at],
                    digamma(a + b)
                    - digamma(a)
                    + share_t_x @ (digamma(a) - psi_abx)
                    + share_tx_x @ (digamma(a + 1) - psi_abx),
                    digamma(a + b)
                    - digamma(b)
                    + share_t_x @ (digamma(b + xs) - psi_abx)
                    + share_tx_x @ (digamma(b + xs_m1) - psi_abx),
                ]
            )
            params = np.array([r, alpha, a, b])
            value = -loglik + penalizer * (params**2).sum()
            gradient = -grad * params + 2 * penalizer * params**2
            return float(value), gradient

        # Start from a purchase rate of one per mean observation length.
        start = np.log([1.0, max(big_t.mean(), 1e-3), 1.0, 1.0])
        self.params_, mean_nll = _optimize(
            objective, start, ("r", "alpha", "a", "b"), "BG/NBD", len(x)
        )
        self.n_customers_ = len(x)
        penalty = penalizer * sum(v**2 for v in self.params_.values())
        self.log_likelihood_ = -(mean_nll - penalty) * len(x)
        return self

    def _check_fitted(self) -> tuple[float, float, float, float]:
        if not hasattr(self, "params_"):
            raise TailorError("BetaGeo is not fitted; call fit(frequency, recency, T) first")
        p = self.params_
        return p["r"], p["alpha"], p["a"], p["b"]

    def _log_dead_odds(
        self, x: NDArray[np.float64], t_x: NDArray[np.float64], big_t: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """log of a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x), the odds of having dropped out after
        the last purchase (-inf without repeat purchases: the model lets a customer drop out only
        after a repeat purchase)."""
        r, alpha, a, b = self._check_fitted()
        repeat = x > 0
        b_x = np.where(repeat, b + x - 1, 1.0)
        odds = np.log(a) - np.log(b_x) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
        return np.where(repeat, odds, -np.inf)

    def p_alive(
        self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> NDArray[np.float64]:
        """Probability that each customer is still active at the end of observation.

        Parameters
        ----------
        frequency, recency, T : array-like of shape (n_customers,)
            As for :meth:`fit`.

        Returns
        -------
        p_alive : ndarray of shape (n_customers,)
            In [0, 1]; exactly 1 for customers without repeat purchases.
        """
        x, t_x, big_t = _check_rfm(frequency, recency, T)
        return expit(-self._log_dead_odds(x, t_x, big_t))

    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> NDArray[np.float64]:
        """Expected purchases of each customer in the next ``t`` time units (FHL eq. 10).

        Parameters
        ----------
        t : float or array-like broadcastable to (n_customers,)
            Length of the future period, in the unit of ``T``.
        frequency, recency, T : array-like of shape (n_customers,)
            As for :meth:`fit`.

        Returns
        -------
        expected : ndarray of shape (n_customers,)
            E[Y(t) | frequency, recency, T], >= 0 and increasing in ``t``.
        """
        x, t_x, big_t = _check_rfm(frequency, recency, T)
        horizon = np.broadcast_to(np.asarray(t, dtype=float), x.shape)
        return self._expected(horizon, x, big_t) * expit(-self._log_dead_odds(x, t_x, big_t))

    def expected_purchases_new(self, t: ArrayLike) -> NDArray[np.float64]:
        """Expected purchases of a new customer in the ``t`` time units after their first
        purchase, E[X(t)]; the first purchase is not counted.

        Parameters
        ----------
        t : float or array-like of shape (n,)
            Length of the period.

        Returns
        -------
        expected : ndarray of the shape of ``t``
        """
        horizon = np.asarray(t, dtype=float)
        zeros = np.zeros_like(horizon)
        return self._expected(horizon, zeros, zeros)

    def _expected(
        self, t: NDArray[np.float64], x: NDArray[np.float64], big_t: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """(a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], with
        z = t/(alpha+T+t): FHL eq. 10 before dividing by the odds of being alive."""
        r, alpha, a, b = self._check_fitted()
        if abs(a - 1) < NEAR_ONE:
            a = 1 + math.copysign(NEAR_ONE, a - 1)
        with np.errstate(all="ignore"):  # overflow shows as a non-finite result, below
            z = t / (alpha + big_t + t)
            # Euler's transformation, 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z),
            # folds the factor (1-z)^(r+x) into the function: no overflow of 2F1 times underflow
            # of the power for frequent buyers, and the series converges faster as x grows.
            # c = 0 (a + b = 1, x = 0) is a pole of 2F1 where the product has a limit: step off.
            c = a + b + x - 1
            c = np.where(np.abs(c) < NEAR_ONE, NEAR_ONE, c)
            series = np.asarray(hyp2f1(a + b - 1 - r, a - 1, c, z), dtype=float)
            if not np.isfinite(series).all():
                # scipy's hyp2f1 returns nan at some integer c - a - b near z = 1: step off them.
                stepped = hyp2f1(a + b - 1 - r, a - 1, c * (1 + 1e-9), z)
                series = np.where(np.isfinite(series), series, stepped)
            tail = np.exp((a - 1) * np.log1p(-z)) * series
            expected = c / (a - 1) * (1 - tail)
        if not np.isfinite(expected).all():
            raise TailorError(
                f"BG/NBD cannot predict with r = {r:.3g}, alpha = {alpha:.3g}, a = {a:.3g}, "
                f"b = {b:.3g}: the fit ran off to extreme values (too few customers or too "
                "alike); fit more customers, or use a penalizer"
            )
        return np.maximum(expected, 0.0)


class GammaGamma:
    """Gamma-Gamma model of the value of a customer's purchases (Fader, Hardie & Lee 2005).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters (``penalizer * sum(params ** 2)`` added to the mean negative
        log-likelihood per customer); 0 is plain maximum likelihood.

    Attributes
    ----------
    params_ : dict
        ``p`` (shape of the value of one purchase), ``q`` and ``gamma`` (shape and scale of its
        rate across customers). The mean value of a purchase across customers is
        ``p * gamma / (q - 1)``.
    log_likelihood_ : float
        Total log-likelihood of the fitted customers.
    n_customers_ : int
        Customers fitted: those with frequency > 0 and monetary > 0.
    """

    def __init__(self, penalizer: float = 0.0) -> None:
        self.penalizer = penalizer

    def fit(self, frequency: ArrayLike, monetary: ArrayLike) -> GammaGamma:
        """Fit the parameters by maximum likelihood on the customers with repeat purchases.

        Parameters
        ----------
        frequency : array-like of shape (n_customers,)
            Repeat purchases.
        monetary : array-like of shape (n_customers,)
            Mean value of a repeat purchase (currency). Customers with frequency 0, or whose
            repeat purchases are worth 0 or less in all (returns), are left out.

        Returns
        -------
        self : GammaGamma
        """
        x, m = _floats(frequency, "frequency"), _floats(monetary, "monetary")
        if len(x) != len(m):
            raise TailorError(f"frequency and monetary differ in length ({len(x)}, {len(m)})")
        keep = (x > 0) & (m > 0)
        if not keep.any():
            raise TailorError(
                "Gamma-Gamma needs at least one customer with a repeat purchase of positive value"
            )
        x, m = x[keep], m[keep]
        # As for BG/NBD, the special functions are computed once per distinct x.
        xs, x_at = np.unique(x, return_inverse=True)
        weight = np.full(len(x), 1 / len(x))
        weight_x = np.bincount(x_at, weight, minlength=len(xs))
        spent = x * m
        mean_log_m, mean_x_log_m = weight @ np.log(m), (weight * x) @ np.log(m)
        mean_x_log_x = weight_x @ (xs * np.log(xs))
        penalizer = self.penalizer

        def objective(log_params: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
            p, q, gamma = np.exp(log_params)
            px = p * xs
            log_spent = np.log(gamma + spent)
            px_q = p * x + q
            # mean of log f(m | p, q, gamma, x), FHL "RFM and CLV" (2005)
            loglik = (
                weight_x @ (gammaln(px + q) - gammaln(px))
                - gammaln(q)
                + q * np.log(gamma)
                + p * mean_x_log_m
                - mean_log_m
                + p * mean_x_log_x
                - (weight * px_q) @ log_spent
            )
            psi_pxq = digamma(px + q)
            grad = np.array(
                [
                    (weight_x * xs) @ (psi_pxq - digamma(px))
                    + mean_x_log_m
                    + mean_x_log_x
                    - (weight * x) @ log_spent,
                    weight_x @ psi_pxq - digamma(q) + np.log(gamma) - weight @ log_spent,
                    q / gamma - (weight * px_q) @ (1 / (gamma + spent)),
                ]
            )
            params = np.array([p, q, gamma])
            value = -loglik + penalizer * (params**2).sum()
            gradient = -grad * params + 2 * penalizer * params**2
            return float(value), gradient

        # Start from q = 2 and a mean purchase of the observed mean.
        start = np.log([1.0, 2.0, m.mean()])
        self.params_, mean_nll = _optimize(
            objective, start, ("p", "q", "gamma"), "Gamma-Gamma", len(x)
        )
        self.n_customers_ = len(x)
        penalty = penalizer * sum(v**2 for v in self.params_.values())
        self.log_likelihood_ = -(mean_nll - penalty) * len(x)
        return self

    def expected_average_value(
        self, frequency: ArrayLike, monetary: ArrayLike
    ) -> NDArray[np.float64]:
        """Expected value of each customer's future purchases, E[Z | frequency, monetary].

        The customer's own mean weighted against the population mean: ``p (gamma + x m) /
        (p x + q - 1)``; a customer without repeat purchases gets the population mean
        ``p gamma / (q - 1)``.

        Parameters
        ----------
        frequency, monetary : array-like of shape (n_customers,)
            As for :meth:`fit`.

        Returns
        -------
        value : ndarray of shape (n_customers,)
            In the currency of ``monetary``.
        """
        if not hasattr(self, "params_"):
            raise TailorError("GammaGamma is not fitted; call fit(frequency, monetary) first")
        p, q, gamma = self.params_["p"], self.params_["q"], self.params_["gamma"]
        if q <= 1:
            raise TailorError(
                f"Gamma-Gamma fitted q = {q:.3g} <= 1: the mean value of a purchase is infinite "
                "(too few or too skewed repeat purchases; try a penalizer)"
            )
        x, m = _floats(frequency, "frequency"), _floats(monetary, "monetary")
        m = np.where(x > 0, m, 0.0)
        return p * (gamma + x * m) / (p * x + q - 1)


def _naive(moment: pd.Timestamp) -> pd.Timestamp:
    """A time in local wall-clock time, without its time zone (as purchase days are counted)."""
    moment = pd.Timestamp(moment)
    return moment.tz_localize(None) if moment.tz is not None else moment


def _columns(
    purchases: pd.DataFrame,
) -> tuple[NDArray[Any], NDArray[np.datetime64], NDArray[np.float64]]:
    """customer_id, timestamp (naive datetime64[ns]) and value of every purchase, checked."""
    missing = [c for c in PURCHASE_COLUMNS if c not in purchases.columns]
    if missing:
        raise TailorError(
            f"purchases: missing column(s) {', '.join(missing)} "
            f"(needs {', '.join(PURCHASE_COLUMNS)})"
        )
    timestamp = purchases["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(timestamp):
        raise TailorError(
            f"purchases: column 'timestamp' must be datetime64, not {timestamp.dtype}"
        )
    if isinstance(timestamp.dtype, pd.DatetimeTZDtype):
        timestamp = timestamp.dt.tz_localize(None)
    value = pd.to_numeric(purchases["value"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(value)) + 1
    bad_time = np.flatnonzero(timestamp.isna().to_numpy()) + 1
    for column, rows in (("value", bad), ("timestamp", bad_time)):
        if len(rows):
            shown = ", ".join(str(r) for r in rows[:5])
            raise TailorError(
                f"purchases: column {column!r} is missing or not a number in {len(rows)} rows "
                f"(rows {shown}{', ...' if len(rows) > 5 else ''}, counted from 1)"
            )
    return purchases["customer_id"].to_numpy(), timestamp.to_numpy("datetime64[ns]"), value


def _daily(
    customer: NDArray[Any], timestamp: NDArray[np.datetime64], value: NDArray[np.float64]
) -> tuple[pd.Index, NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Purchase days: one per (customer, calendar day) with purchases, sorted by both.

    Returns the customer ids (sorted), then for each purchase day the customer (position in the
    ids), the day (days since 1970-01-01) and the value of the day (summed).
    """
    codes, ids = pd.factorize(customer, sort=True)
    day = timestamp.astype("datetime64[D]").astype(np.int64)
    if len(day) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return pd.Index(ids), empty, empty, np.zeros(0)
    # One integer key per (customer, day): a sort instead of a group-by on two columns.
    first, span = day.min(), day.max() - day.min() + 1
    keys, at = np.unique(codes.astype(np.int64) * span + (day - first), return_inverse=True)
    day_value = np.bincount(at.ravel(), weights=value, minlength=len(keys))
    return pd.Index(ids), keys // span, keys % span + first, day_value


def summarize(purchases: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Frequency, recency, T and monetary value of each customer from their purchases.

    A purchase is a day with purchases (a customer who buys twice on a day bought once, for the
    sum of both); days are calendar days of ``timestamp`` (wall-clock time where it has a time
    zone), each taken at its start.

    Parameters
    ----------
    purchases : DataFrame
        Columns ``customer_id``, ``timestamp`` (datetime64) and ``value`` (currency); one row
        per purchase event (line or basket). Rows at or after ``end`` are ignored.
    end : Timestamp
        End of observation, exclusive.

    Returns
    -------
    summary : DataFrame indexed by customer_id, one row per customer who bought before ``end``
        ``frequency`` (repeat purchase days: days with purchases after the first), ``recency``
        (days from the first to the last purchase day), ``T`` (days from the first purchase day
        to ``end``), ``monetary`` (mean value of a repeat purchase day; 0 without any). All float.
    """
    return _summary(*_columns(purchases), _naive(end))


def _summary(
    customer: NDArray[Any],
    timestamp: NDArray[np.datetime64],
    value: NDArray[np.float64],
    end: pd.Timestamp,
) -> pd.DataFrame:
    before = timestamp < end.to_datetime64()
    ids, who, day, day_value = _daily(customer[before], timestamp[before], value[before])
    if len(who) == 0:
        columns = ["frequency", "recency", "T", "monetary"]
        return pd.DataFrame(columns=columns, index=ids.rename("customer_id"), dtype=float)
    # Purchase days come sorted by customer: each customer's run starts at their first day.
    starts = np.flatnonzero(np.r_[True, who[1:] != who[:-1]])
    stops = np.r_[starts[1:], len(who)]
    repeat_value = day_value.copy()
    repeat_value[starts] = 0.0
    frequency = (stops - starts - 1).astype(float)
    repeat_total = np.add.reduceat(repeat_value, starts)
    end_day = (end - pd.Timestamp(0)) / DAY
    return pd.DataFrame(
        {
            "frequency": frequency,
            "recency": (day[stops - 1] - day[starts]).astype(float),
            "T": end_day - day[starts],
            "monetary": np.divide(
                repeat_total, frequency, out=np.zeros(len(starts)), where=frequency > 0
            ),
        },
        index=ids.rename("customer_id"),
    )


@dataclass
class ClvReport:
    """Lifetime value of every customer, the fitted parameters and the holdout check.

    Attributes
    ----------
    customers : DataFrame, one row per customer who bought before ``as_of``
        ``customer_id``, ``frequency``, ``recency``, ``T``, ``monetary`` (as :func:`summarize`),
        ``p_alive`` (probability of being active at ``as_of``), ``expected_purchases`` (purchase
        days in the next ``horizon_days``), ``expected_value_per_purchase`` (currency),
        ``clv`` (their product, discounted when asked; currency), ``clv_reason`` (in words).
    parameters : dict
        ``r``, ``alpha`` (days), ``a``, ``b`` of BG/NBD; ``p``, ``q``, ``gamma`` of Gamma-Gamma.
    as_of : Timestamp
        End of the fitted period (exclusive).
    horizon_days : float
        Length of the predicted period.
    holdout : dict or None
        When there are purchases at or after ``as_of``: ``start``, ``end`` (the horizon clipped to
        the day after the last purchase day), ``days``, ``customers`` (those seen before
        ``as_of``), ``predicted_purchases`` and ``actual_purchases`` (repeat purchase days of
        those customers in the period), ``purchases_relative_error`` ((predicted - actual) /
        actual), ``predicted_spend``, ``actual_spend``, ``spend_relative_error``.
    seconds : float
        Time taken to summarize, fit and value (seconds).
    penalizer : float
        The BG/NBD penalty used: 0, unless the plain fit ran off (see :data:`PENALIZERS`).
    """

    customers: pd.DataFrame
    parameters: dict[str, float]
    as_of: pd.Timestamp
    horizon_days: float
    holdout: dict[str, Any] | None = None
    seconds: float = field(default=0.0, compare=False)
    penalizer: float = 0.0


MIN_CUSTOMERS = 20
"""Fewer buyers than this cannot support the four BG/NBD parameters."""

PENALIZERS = (0.0, 0.001, 0.01, 0.1)
"""Penalties tried in turn when a BG/NBD fit runs off to values it cannot predict with (a shop
where almost nobody drops out drives a and b towards infinity)."""


def _fit_bgnbd(rfm: tuple[pd.Series, pd.Series, pd.Series], horizon_days: float) -> BetaGeo:
    """The unpenalised maximum-likelihood fit, or the least penalised one that can predict."""
    for penalizer in PENALIZERS:
        model = BetaGeo(penalizer).fit(*rfm)
        try:
            model.expected_purchases(horizon_days, *rfm)
        except TailorError:
            if penalizer == PENALIZERS[-1]:
                raise
            continue
        return model
    raise AssertionError("unreachable")


def _discounted_purchases(
    model: BetaGeo,
    summary: pd.DataFrame,
    horizon_days: float,
    discount_rate_annual: float,
) -> NDArray[np.float64]:
    """Expected purchases in the horizon, each month's discounted at mid-month to ``as_of``."""
    rfm = (summary["frequency"], summary["recency"], summary["T"])
    steps = max(1, math.ceil(horizon_days / DISCOUNT_STEP_DAYS))
    grid = np.linspace(0.0, horizon_days, steps + 1)
    total = np.zeros(len(summary))
    before = np.zeros(len(summary))
    for start, stop in zip(grid[:-1], grid[1:], strict=True):  # a loop over months
        after = model.expected_purchases(stop, *rfm)
        factor = (1 + discount_rate_annual) ** (-(start + stop) / 2 / 365.25)
        total += factor * (after - before)
        before = after
    return total


def _whole(values: pd.Series) -> pd.Series:
    return values.round().astype(np.int64).astype(str)


def _reasons(customers: pd.DataFrame, horizon_days: float, currency: str) -> pd.Series:
    """One sentence per customer, built column by column (a Python loop or ``%`` formatting per
    customer costs seconds per million customers; pandas' string concatenation does not)."""
    since = (customers["T"] - customers["recency"]).round()
    tenths = (customers["expected_purchases"] * 10).round().astype(np.int64)
    one_day = pd.Series(np.where(since == 1, " day ago; ", " days ago; "), index=since.index)
    first_only = customers["frequency"] == 0
    return (
        "bought on "
        + _whole(customers["frequency"] + 1)
        + pd.Series(np.where(first_only, " day in ", " days in "), index=since.index)
        + _whole(customers["T"])
        + " days, last "
        + _whole(since)
        + one_day
        + _whole(100 * customers["p_alive"])
        + "% likely still active; expects "
        + (tenths // 10).astype(str)
        + "."
        + (tenths % 10).astype(str)
        + f" purchases of about {currency}"
        + _whole(customers["expected_value_per_purchase"])
        + f" in {horizon_days:g} days"
    )


def clv_report(
    purchases: pd.DataFrame,
    as_of: pd.Timestamp | None = None,
    horizon_days: float = 90,
    discount_rate_annual: float = 0.0,
    *,
    currency: str = "$",
) -> ClvReport:
    """Fit BG/NBD and Gamma-Gamma on the purchases before ``as_of`` and value every customer.

    Parameters
    ----------
    purchases : DataFrame
        Columns ``customer_id``, ``timestamp`` (datetime64), ``value`` (currency).
    as_of : Timestamp, optional
        End of the fitted period, exclusive. None fits all purchases, up to the day after the
        last purchase day. Purchases from ``as_of`` on are the holdout.
    horizon_days : float
        Length of the predicted period, in days.
    discount_rate_annual : float
        Annual discount rate (0.1 is 10 %); each month's expected purchases are discounted to
        ``as_of`` at mid-month. 0 does not discount.
    currency : str
        Symbol put before amounts in ``clv_reason``.

    Returns
    -------
    report : ClvReport
    """
    started = time.perf_counter()
    customer, timestamp, value = _columns(purchases)
    if horizon_days <= 0:
        raise TailorError(f"horizon_days must be > 0, not {horizon_days}")
    if discount_rate_annual < 0:
        raise TailorError(f"discount_rate_annual must be >= 0, not {discount_rate_annual}")
    if len(timestamp) == 0:
        raise TailorError("purchases: no rows; lifetime value needs purchases")
    data_end = pd.Timestamp(timestamp.max()).floor("D") + DAY
    end = data_end if as_of is None else _naive(as_of)
    summary = _summary(customer, timestamp, value, end)
    if summary.empty:
        raise TailorError(f"no purchases before as_of = {end}; choose a later as_of")
    if len(summary) < MIN_CUSTOMERS:
        raise TailorError(
            f"lifetime value: too few customers to fit ({len(summary)} bought before as_of; "
            f"at least {MIN_CUSTOMERS} needed)"
        )
    rfm = (summary["frequency"], summary["recency"], summary["T"])
    bg = _fit_bgnbd(rfm, horizon_days)
    gg = GammaGamma().fit(summary["frequency"], summary["monetary"])

    customers = summary.reset_index()
    customers["p_alive"] = bg.p_alive(*rfm)
    customers["expected_purchases"] = bg.expected_purchases(horizon_days, *rfm)
    customers["expected_value_per_purchase"] = gg.expected_average_value(
        summary["frequency"], summary["monetary"]
    )
    purchases_ahead = (
        customers["expected_purchases"].to_numpy()
        if discount_rate_annual == 0
        else _discounted_purchases(bg, summary, horizon_days, discount_rate_annual)
    )
    customers["clv"] = purchases_ahead * customers["expected_value_per_purchase"].to_numpy()
    customers["clv_reason"] = _reasons(customers, horizon_days, currency)

    holdout = None
    later = timestamp >= end.to_datetime64()
    if later.any():
        stop = min(end + pd.Timedelta(days=horizon_days), data_end)
        window = later & (timestamp < stop.to_datetime64()) & pd.Index(customer).isin(summary.index)
        _, _, _, window_value = _daily(customer[window], timestamp[window], value[window])
        days = (stop - end) / DAY
        predicted = bg.expected_purchases(days, *rfm)
        predicted_purchases = float(predicted.sum())
        predicted_spend = float(predicted @ customers["expected_value_per_purchase"].to_numpy())
        actual_purchases, actual_spend = float(len(window_value)), float(window_value.sum())
        holdout = {
            "start": end,
            "end": stop,
            "days": float(days),
            "customers": len(summary),
            "predicted_purchases": predicted_purchases,
            "actual_purchases": actual_purchases,
            "purchases_relative_error": _relative_error(predicted_purchases, actual_purchases),
            "predicted_spend": predicted_spend,
            "actual_spend": actual_spend,
            "spend_relative_error": _relative_error(predicted_spend, actual_spend),
        }
    return ClvReport(
        customers=customers,
        parameters={**bg.params_, **gg.params_},
        penalizer=bg.penalizer,
        as_of=end,
        horizon_days=float(horizon_days),
        holdout=holdout,
        seconds=time.perf_counter() - started,
    )


def _relative_error(predicted: float, actual: float) -> float:
    return (predicted - actual) / actual if actual else math.nan
