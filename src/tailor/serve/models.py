"""Pydantic models of every request and response of the HTTP API."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

MAX_EVENTS = 1000
"""Events in one POST /v1/events at most."""


def _encodable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid UTF-8 text") from None
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


Text = Annotated[
    str, Field(min_length=1, max_length=256), AfterValidator(lambda s: _encodable(s.strip()))
]
Id = Annotated[StrictInt | Text, Field(description="An id: an integer or text.")]
Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e12, le=1e12)]


def _in_range(stamp: datetime | None) -> datetime | None:
    if stamp is None:
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    if not 1900 <= stamp.year <= 2200:
        raise ValueError("timestamp must lie between the years 1900 and 2200")
    return stamp


class EventIn(BaseModel):
    """One event, as ``tailor ingest events`` reads a row."""

    model_config = ConfigDict(extra="forbid")

    customer_id: Id
    item_id: Id
    event_type: Literal["purchase", "cart", "view", "rating", "return", "not_interested"] = (
        "purchase"
    )
    timestamp: Annotated[
        datetime | None,
        AfterValidator(_in_range),
        Field(description="ISO 8601; an offset is converted to UTC; none = UTC; default now."),
    ] = None
    quantity: Number | None = None
    value: Number | None = Field(None, description="Money for a purchase; the rating for one.")
    basket_id: Id | None = None
    event_id: Id | None = Field(None, description="Makes retries idempotent: stored once.")


EventsIn = Annotated[list[EventIn], Field(min_length=1, max_length=MAX_EVENTS)]


class EventsAccepted(BaseModel):
    accepted: int = Field(description="Events received and stored (repeats are stored once).")


class Recommendation(BaseModel):
    item_id: int | str
    score: float
    reason: str


class RecommendationList(BaseModel):
    customer_id: int | str
    build_id: str
    items: list[Recommendation]


class SessionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[Id], Field(max_length=200)]
    k: Annotated[int, Field(ge=1, le=1000)] = 10


class SessionList(BaseModel):
    build_id: str
    items: list[Recommendation]


class SimilarItems(BaseModel):
    item_id: int | str
    build_id: str
    items: list[Recommendation]


class Bundle(BaseModel):
    item_id: int | str
    support: float
    confidence: float
    lift: float
    reason: str


class Bundles(BaseModel):
    item_id: int | str
    build_id: str
    items: list[Bundle]


class Purchase(BaseModel):
    item_id: int | str
    timestamp: datetime
    quantity: float | None
    value: float | None


class Action(BaseModel):
    action: str
    reason: str


class Customer360(BaseModel):
    customer_id: int | str
    build_id: str
    rfm_segment: str | None
    segment_reason: str | None
    cluster: int | None
    cluster_description: str | None
    clv: float | None
    clv_reason: str | None
    churn_probability: float | None
    churn_reason: str | None
    anomaly_score: float | None
    anomaly_reason: str | None
    profile: dict[str, Any] = Field(description="Every 360 feature of the build, by name.")
    recent_purchases: list[Purchase]
    actions: list[Action]


class ConsentIn(BaseModel):
    """The flags to change; one left out keeps its value."""

    model_config = ConfigDict(extra="forbid")
    personalization: bool | None = None
    marketing: bool | None = None
    analytics: bool | None = None


class Consent(BaseModel):
    customer_id: str
    personalization: bool | None = Field(description="None: no objection recorded.")
    marketing: bool | None
    analytics: bool | None


class ErasureReport(BaseModel):
    subject: str = Field(description="The keyed hash of the id: all the audit log holds.")
    held: bool = Field(description="Whether Tailor held anything on the customer.")
    warehouse_rows: dict[str, int] = Field(description="Rows deleted, per table.")
    build_id: str | None = Field(description="The build now served, without the customer.")
    builds_deleted: int
    retrain_pending: list[str] = Field(
        description="Models whose weights shared by all customers lose this one's share at the "
        "next build (their own rows went now)."
    )
    seconds: float
    steps: dict[str, float] = Field(description="Seconds of each step: warehouse, build, file.")


class DataReport(BaseModel):
    customer_id: str
    build_id: str
    warehouse: dict[str, Any] = Field(
        description="Per table holding the customer: why it is kept, and every row."
    )
    derived: dict[str, Any] = Field(
        description="What the published build derived: 360 features and scores, offers."
    )
    recommendations: list[Recommendation] = Field(description="The current list, each with why.")


class Offer(BaseModel):
    customer_id: int | str
    campaign_id: int | str
    offer_id: int | str | None = Field(
        description="The campaign's coupon on the products the customer buys most, if any."
    )
    probability: float = Field(description="Probability that the customer redeems.")
    value: float | None = Field(description="Value of one redemption.")
    expected_value: float | None = Field(description="probability x value.")
    reason: str


class OfferList(BaseModel):
    build_id: str
    campaign: str | None
    offers: list[Offer]


class Suggestion(BaseModel):
    item_id: int | str
    title: str | None
    reason: str


class Return(BaseModel):
    item_id: int | str
    title: str | None
    timestamp: datetime
    value: float | None


class ServiceView(BaseModel):
    build_id: str
    customer_id: int | str
    segment: str | None
    segment_meaning: str | None
    clv: float | None
    churn_probability: float | None
    churn_reason: str | None
    returns: list[Return]
    next_best_offer: Offer | None
    products: list[Suggestion]
    talking_points: list[str] = Field(description="What to know and say, most important first.")


class Segments(BaseModel):
    build_id: str
    rfm_segments: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    silhouette: dict[str, Any]


class Health(BaseModel):
    status: Literal["ok", "no build"]
    build_id: str | None
    created_at: str | None
    recommender: str | None
    counts: dict[str, int]


class RebuildRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(None, description="Build as of this day (later events hidden).")


class RebuildJob(BaseModel):
    job_id: str
    status: Literal["running", "succeeded", "failed"]
    started_at: datetime
    finished_at: datetime | None
    build_id: str | None
    error: str | None


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["read", "write", "admin"]


class KeyCreated(BaseModel):
    key: str
    role: str


class Problem(BaseModel):
    detail: str


def _day_in_range(day: date | None) -> date | None:
    if day is not None and not 1900 <= day.year <= 2200:
        raise ValueError("as_of must lie between the years 1900 and 2200")
    return day


class DPReportRequest(BaseModel):
    """A differentially private release: the ε to spend of the warehouse's privacy budget."""

    model_config = ConfigDict(extra="forbid")

    epsilon: float = Field(gt=0, le=1000, allow_inf_nan=False, description="The ε to spend.")
    as_of: Annotated[
        date | None,
        AfterValidator(_day_in_range),
        Field(description="Report on the events up to this day."),
    ] = None


class DPFigure(BaseModel):
    what: str
    epsilon: float = Field(description="The ε this figure spent (OpenDP's privacy map).")
    share: float = Field(description="Its share of the release's ε.")
    sensitivity: float = Field(description="How far one customer can move it (L1).")
    scale: float = Field(description="The Laplace noise's scale: sensitivity / ε.")


class LedgerEntry(BaseModel):
    entry_id: int
    spent_at: datetime
    epsilon: float
    release: str
    as_of: str | None
    channel: str | None
    detail: dict[str, float] = Field(description="ε per figure.")


class Ledger(BaseModel):
    dataset: str = Field(description="What the budget is of: the warehouse's data.")
    budget: float
    spent: float
    remaining: float
    entries: list[LedgerEntry]


class DPReport(BaseModel):
    dataset: str
    epsilon: float = Field(description="The ε this release spent.")
    budget: float
    spent: float = Field(description="The ε spent on the dataset in all, this release included.")
    remaining: float
    entry: dict[str, Any] = Field(description="The ledger entry of this release.")
    first_day: date
    last_day: date
    bounds: dict[str, float] = Field(description="Contribution bounds per customer.")
    figures: dict[str, DPFigure]
    department_sales: list[dict[str, Any]] = Field(
        description="Noisy sales per week (its first day) and department."
    )
    baskets: list[dict[str, Any]] = Field(
        description="Per 4-week period: noisy baskets, their value, the average basket value."
    )
    segments: list[dict[str, Any]] = Field(description="Noisy customers per RFM segment.")


def finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
