"""Synthetic retail data with a known structure, for tests, demos and benchmarks.

:func:`generate` draws a small, realistic retailer export — a catalog, customers, shopping trips
(baskets), promotions, coupon campaigns and their redemptions — together with the latent
structure that produced it (:class:`Truth`), so that tests can check that a model recovers what
was put in. :func:`generate_ratings` draws explicit 1-5 star ratings from a low-rank taste model
(:class:`RatingsTruth`), for checks that are not grocery-only. :func:`events_csv` writes a large,
plainer events file in bounded memory for ingest benchmarks, and :func:`write` saves a
:class:`SyntheticData` as CSV, Parquet or JSON lines.

How the data is drawn
---------------------
* Catalog: each department has a few categories with a median price; an item's price is
  lognormal around it (own-label "Private" brands about 20 % cheaper). Within a department, item
  popularity follows a Zipf law over a random ranking.
* Customers: a latent taste over departments (Dirichlet) whose largest share is a favoured
  department; a trip frequency; some join late and some churn part-way. Each customer has 2-6
  staples, mostly from the favoured department, rebought on a cycle of 5-30 days (jitter +-10 %);
  a staple falling due close to a planned trip is bought on that trip, otherwise on a trip of its
  own. Every trip also holds exploratory picks drawn from taste x popularity (never the
  customer's own staples) and, rarely, item views.
* Campaigns: each has members and offers (coupons) on a few items of one category. A member
  redeems an offer with probability ``responsiveness x taste[offer's department] / max(taste)``,
  on one of their trips inside the window, buying an offer item at the coupon's discount.
* Returns: about 1 % of rows are returns, encoded as a retailer export does: event_type
  "purchase" with a negative quantity and value, 1-14 days after the purchase, in a basket of
  their own.

Ratings (:func:`generate_ratings`): items belong to genres; each has taste factors (its genre's
centre plus its own deviation) and a quality bias, each customer taste factors and a leniency
bias. A customer's latent opinion of an item is ``mean + leniency + quality + factors . factors
+ noise``, rounded and clipped to 1-5 stars. Which items a customer rates is drawn without
replacement with odds ``popularity x exp(affinity x opinion)``: popular items get rated more
(Zipf), and people mostly rate what they chose because they expected to like it.

Everything is vectorised with NumPy; the only Python loops run over campaigns and their offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from tailor.errors import ConfigError

# department -> ((category, median price in currency units), ...)
CATALOG: dict[str, tuple[tuple[str, float], ...]] = {
    "PRODUCE": (("Fruit", 2.5), ("Vegetables", 1.8), ("Salad", 3.2)),
    "DAIRY": (("Milk", 1.4), ("Cheese", 4.5), ("Yogurt", 2.2)),
    "BAKERY": (("Bread", 2.4), ("Pastries", 3.5), ("Cakes", 7.0)),
    "MEAT": (("Beef", 9.5), ("Poultry", 6.5), ("Pork", 7.5)),
    "FROZEN": (("Frozen Meals", 4.5), ("Ice Cream", 5.0), ("Frozen Vegetables", 2.5)),
    "PANTRY": (("Pasta", 1.6), ("Cereal", 3.8), ("Canned Goods", 1.9)),
    "BEVERAGES": (("Soft Drinks", 2.8), ("Coffee", 7.5), ("Juice", 3.2)),
    "BABY": (("Diapers", 14.0), ("Baby Food", 1.5), ("Wipes", 4.0)),
    "PET": (("Dog Food", 12.0), ("Cat Food", 8.0), ("Pet Treats", 4.5)),
    "HOUSEHOLD": (("Cleaning", 4.2), ("Paper Goods", 7.0), ("Laundry", 9.5)),
}
DEPARTMENTS: tuple[str, ...] = tuple(CATALOG)
BRANDS = (
    "Acme", "Greenfield", "Sunvale", "Northwind", "Bluebird",
    "Harvest Moon", "Oakridge", "Silverline", "Meadow", "Fairway",
)  # fmt: skip
PRIVATE_BRAND = "Private"
AGE_BANDS = ("19-24", "25-34", "35-44", "45-54", "55-64", "65+")
INCOME_BANDS = ("Under 25K", "25-49K", "50-74K", "75-99K", "100-149K", "150K+")
CAMPAIGN_TYPES = ("A", "B", "C")
CAMPAIGN_THEMES = (
    "Fresh Week", "Family Stock-up", "Weekend Treats", "Healthy Start",
    "Pantry Refill", "Pet Days", "Home Essentials", "Seasonal Savings",
)  # fmt: skip
TABLES = (
    "events", "items", "customers", "campaigns", "campaign_members", "offers", "redemptions",
)  # fmt: skip
EVENTS_CSV_COLUMNS = (
    "customer_id", "item_id", "timestamp", "quantity", "value", "basket_id", "store_id",
)  # fmt: skip

STORE_WEIGHTS = np.array([0.30, 0.22, 0.18, 0.12, 0.10, 0.08])  # store_id 1..6
STORE_HOURS = (7.0, 22.0)  # opening and closing hour
WEEKDAY_WEIGHTS = np.array([0.8, 0.8, 0.9, 0.95, 1.15, 1.4, 1.0])  # trips by day, Monday first
QUANTITIES, QUANTITY_P = np.array([1, 2, 3, 4, 6]), np.array([0.64, 0.22, 0.08, 0.04, 0.02])
PROMO_SHARES = np.array([0.1, 0.15, 0.2, 0.25, 0.3, 0.5])  # weekly shelf promotions
COUPON_SHARES = np.array([0.2, 0.25, 0.3, 0.4, 0.5])
RETURN_SHARE = 0.011  # of purchase rows; about 1 % of all rows
FIRST_ITEM_ID = 100_000
SECONDS_PER_DAY = 86_400
GENRES = (
    "Crime", "Romance", "Science Fiction", "Fantasy", "History", "Biography",
    "Cooking", "Travel", "Children", "Poetry", "Business", "Horror",
)  # fmt: skip
RATING_MEAN = 2.0  # stars of an average customer for an average item, before taste
TASTE_SCALE = 1.4  # stars of one standard deviation of the taste term
AFFINITY = 1.0  # log-odds of rating an item per star of the customer's opinion of it
# Column types of the campaign tables, for the empty ones of generate_ratings.
CAMPAIGN_COLUMNS = {
    "campaign_id": "int64", "type": "str", "name": "str",
    "start": "datetime64[us]", "end": "datetime64[us]",
}  # fmt: skip
MEMBER_COLUMNS = {"campaign_id": "int64", "customer_id": "int64"}
OFFER_COLUMNS = {"offer_id": "int64", "campaign_id": "int64", "item_id": "int64"}
REDEMPTION_COLUMNS = {
    "customer_id": "int64", "offer_id": "int64", "campaign_id": "int64",
    "timestamp": "datetime64[us]",
}  # fmt: skip


@dataclass
class Truth:
    """The latent structure behind a :class:`SyntheticData`, for tests to assert on.

    Attributes
    ----------
    favourite_department : Series of str, index customer_id
        The department with the largest share of each customer's taste.
    staples : DataFrame with columns customer_id, item_id, cycle_days
        Items each customer rebuys on a cycle; ``cycle_days`` (float, days) is the mean time
        between two purchases while the customer is active.
    taste : DataFrame of shape (n_customers, n_departments), index customer_id
        Each customer's share of exploratory picks per department; rows sum to 1.
    responsiveness : Series of float in [0, 1], index customer_id
        Probability that a member redeems an offer in their favoured department.
    trip_gap_days : Series of float, index customer_id
        Mean days between planned (non-staple) trips while active.
    joined_at, churned_at : Series of datetime64, index customer_id
        Midnight of the first active day; midnight after the last active day for customers who
        churn, NaT for those who stay to the end.
    popularity : Series of float, index item_id
        An item's probability of being picked among its department's items; sums to 1 per
        department.
    offer_discount : Series of float, index offer_id
        The coupon's discount as a share of the shelf price.
    """

    favourite_department: pd.Series
    staples: pd.DataFrame
    taste: pd.DataFrame
    responsiveness: pd.Series
    trip_gap_days: pd.Series
    joined_at: pd.Series
    churned_at: pd.Series
    popularity: pd.Series
    offer_discount: pd.Series


@dataclass
class RatingsTruth:
    """The latent structure behind :func:`generate_ratings`, for tests to assert on.

    Attributes
    ----------
    customer_factors : DataFrame of shape (n_customers, n_factors), index customer_id
    item_factors : DataFrame of shape (n_items, n_factors), index item_id
    customer_bias, item_bias : Series of float, index customer_id / item_id
        Leniency of a customer and quality of an item, in stars.
    opinion : DataFrame of shape (n_customers, n_items), index customer_id, columns item_id
        The noiseless star rating ``mean + biases + factors . factors`` (not rounded, not
        clipped): what a perfect model would predict.
    popularity : Series of float, index item_id
        The exposure weight of each item (Zipf over a random ranking); sums to 1.
    noise : float
        Standard deviation of the opinion noise, in stars.
    """

    customer_factors: pd.DataFrame
    item_factors: pd.DataFrame
    customer_bias: pd.Series
    item_bias: pd.Series
    opinion: pd.DataFrame
    popularity: pd.Series
    noise: float


@dataclass
class SyntheticData:
    """A generated retailer export plus its latent :class:`Truth`.

    Attributes
    ----------
    events : DataFrame with columns customer_id, item_id, event_type, timestamp, quantity,
        value, basket_id, store_id, discount
        One row per item of a basket, ordered by basket (chronologically). ``event_type`` is
        "purchase" or, for a few rows, "view" (quantity 1, value 0). Returns are purchase rows
        with negative quantity and value. ``value`` = quantity x price - sign(quantity) x
        discount, in currency units; ``discount`` >= 0 is the amount taken off (shelf promotion
        and coupon).
    items : DataFrame with columns item_id, title, department, category, brand, price
    customers : DataFrame with columns customer_id, age_band, income_band, has_kids,
        household_size
    campaigns : DataFrame with columns campaign_id, type, name, start, end
        The window is ``start <= t <= end`` (midnight of the first day to 23:59:59 of the last).
    campaign_members : DataFrame with columns campaign_id, customer_id
    offers : DataFrame with columns offer_id, campaign_id, item_id
        One row per item an offer covers.
    redemptions : DataFrame with columns customer_id, offer_id, campaign_id, timestamp
        Each matches a purchase row of an offer item in a basket of that customer at that time.
    truth : Truth, or RatingsTruth for :func:`generate_ratings`
    """

    events: pd.DataFrame
    items: pd.DataFrame
    customers: pd.DataFrame
    campaigns: pd.DataFrame
    campaign_members: pd.DataFrame
    offers: pd.DataFrame
    redemptions: pd.DataFrame
    truth: Truth | RatingsTruth


def generate(
    n_customers: int = 200,
    n_items: int = 300,
    days: int = 180,
    seed: int = 0,
    start: str = "2024-01-01",
    n_campaigns: int = 4,
) -> SyntheticData:
    """Draw a retailer export with known structure.

    Parameters
    ----------
    n_customers : int
        Customers, with ids 1..n_customers.
    n_items : int
        Catalog size; at least one item per category (30).
    days : int
        Length of the period in days, from midnight of ``start``.
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives identical frames.
    start : str
        First day of the period, ISO date.
    n_campaigns : int
        Coupon campaigns in the period.

    Returns
    -------
    SyntheticData
        The defaults give about 30 thousand event rows in well under a second.
    """
    categories = [(dept, cat, price) for dept, cats in CATALOG.items() for cat, price in cats]
    if n_items < len(categories):
        raise ConfigError(f"n_items must be at least {len(categories)} (one per category)")
    if n_customers < 1 or days < 1 or n_campaigns < 0:
        raise ConfigError("n_customers and days must be positive and n_campaigns not negative")
    rng = np.random.default_rng(seed)
    origin = np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "s")
    first_weekday = int(pd.Timestamp(start).day_of_week)

    catalog = _draw_catalog(rng, n_items, categories)
    people = _draw_customers(rng, n_customers, days)
    staples = _draw_staples(rng, people, catalog)
    trips, staples["due_trip"] = _draw_trips(rng, people, staples, days, first_weekday)
    picks = _exploratory_rows(rng, people, catalog, staples, trips)
    drawn = _draw_campaigns(rng, n_campaigns, days, origin, people, catalog, trips)

    # coupon rows first, so that de-duplication keeps the discounted row of a basket's item
    n_fixed = len(drawn.coupon_trip) + len(staples["due_trip"])
    trip = np.concatenate([drawn.coupon_trip, staples["due_trip"], picks["trip"]])
    item = np.concatenate([drawn.coupon_item, staples["due_item"], picks["item"]])
    view = np.concatenate([np.zeros(n_fixed, bool), picks["view"]])
    coupon = np.concatenate([drawn.coupon_share, np.zeros(len(trip) - len(drawn.coupon_share))])
    _, first = np.unique((trip * n_items + item) * 2 + view, return_index=True)
    first.sort()
    trip, item, view, coupon = trip[first], item[first], view[first], coupon[first]
    quantity, value, discount = _price_rows(rng, catalog, trips["day"][trip], item, view, coupon)
    rows = _add_returns(rng, trips, people, (trip, item, view, quantity, value, discount), days)

    redemptions = drawn.redemptions
    redeemed_on = redemptions.pop("trip").to_numpy()
    redemptions["timestamp"] = _timestamps(
        origin, trips["day"][redeemed_on], trips["second"][redeemed_on]
    )
    redemptions = redemptions.sort_values(["timestamp", "customer_id", "offer_id"])
    return SyntheticData(
        events=_events_frame(trips, catalog, origin, rows),
        items=catalog["frame"],
        customers=people["frame"],
        campaigns=drawn.campaigns,
        campaign_members=drawn.members,
        offers=drawn.offers,
        redemptions=redemptions.reset_index(drop=True),
        truth=_truth(people, staples, catalog, drawn.offer_discount, origin),
    )


def generate_ratings(
    n_customers: int = 1000,
    n_items: int = 500,
    ratings_per_customer: float = 30,
    seed: int = 0,
    start: str = "2024-01-01",
    days: int = 365,
    n_factors: int = 8,
    noise: float = 0.6,
) -> SyntheticData:
    """Draw explicit 1-5 star ratings with a known low-rank structure (see the module docstring).

    Parameters
    ----------
    n_customers : int
        Customers, with ids 1..n_customers.
    n_items : int
        Items, at least one per genre (12).
    ratings_per_customer : float
        Mean ratings per customer (lognormal, at least 5, at most ``n_items``).
    seed : int
        Seed for ``numpy.random.default_rng``; the same seed gives identical frames.
    start : str
        First day of the period, ISO date; ratings are spread uniformly over ``days`` days.
    n_factors : int
        Rank of the taste model.
    noise : float
        Standard deviation of the opinion noise, in stars.

    Returns
    -------
    SyntheticData
        ``events`` has columns customer_id, item_id, event_type ("rating"), timestamp, value
        (the stars, 1-5), one row per (customer, item); ``items`` item_id, title, category (the
        genre), price; ``customers`` customer_id, age_band; the campaign tables are empty;
        ``truth`` is a :class:`RatingsTruth`. The defaults give about 30 thousand ratings.
    """
    if n_items < len(GENRES):
        raise ConfigError(f"n_items must be at least {len(GENRES)} (one per genre)")
    if n_customers < 1 or days < 1 or n_factors < 1 or ratings_per_customer < 1 or noise < 0:
        raise ConfigError(
            "n_customers, days, n_factors and ratings_per_customer must be positive, noise not "
            "negative"
        )
    rng = np.random.default_rng(seed)
    origin = np.datetime64(pd.Timestamp(start).normalize().to_datetime64(), "s")

    # Items: a genre each, factors near the genre's centre, a quality bias, Zipf popularity.
    genre = rng.permutation(np.arange(n_items) % len(GENRES))
    centres = rng.normal(0.0, 1.0, (len(GENRES), n_factors))
    item_factors = (centres[genre] + rng.normal(0.0, 0.5, (n_items, n_factors))) / np.sqrt(
        n_factors
    )
    item_bias = rng.normal(0.0, 0.4, n_items)
    weight = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.9
    popularity = weight / weight.sum()
    # Customers: taste factors, a leniency bias, how many items they rate.
    customer_factors = rng.normal(0.0, 1.0, (n_customers, n_factors))
    customer_bias = rng.normal(0.0, 0.3, n_customers)
    opinion = (
        RATING_MEAN
        + customer_bias[:, None]
        + item_bias[None, :]
        + TASTE_SCALE * customer_factors @ item_factors.T
    )
    count = np.exp(rng.normal(np.log(ratings_per_customer) - 0.125, 0.5, n_customers))
    count = np.clip(np.round(count), min(5, n_items), n_items).astype(np.int64)

    # Exposure without replacement, by the Gumbel top-k trick: each row's `count` largest of
    # log(odds) + Gumbel noise are a draw without replacement with those odds.
    key = np.log(popularity)[None, :] + AFFINITY * opinion + rng.gumbel(size=opinion.shape)
    order = np.argsort(-key, axis=1)
    rows = np.repeat(np.arange(n_customers), count)
    items = order[rows, _rank_within(rows)]
    stars = np.clip(np.rint(opinion[rows, items] + rng.normal(0.0, noise, len(rows))), 1, 5)

    item_ids = _item_ids(rng, n_items)
    day = rng.integers(0, days, len(rows))
    second = rng.integers(0, SECONDS_PER_DAY, len(rows))
    timestamp = _timestamps(origin, day, second)
    events = pd.DataFrame(
        {
            "customer_id": rows.astype(np.int64) + 1,
            "item_id": item_ids[items],
            "event_type": pd.Series(np.full(len(rows), "rating"), dtype="str"),
            "timestamp": timestamp,
            "value": stars.astype(np.float64),
        }
    )
    events = events.sort_values(["timestamp", "customer_id", "item_id"]).reset_index(drop=True)
    by_genre = np.lexsort((item_ids, genre))
    number = np.empty(n_items, np.int64)
    number[by_genre] = _rank_within(genre[by_genre]) + 1
    genre_name = pd.Series(np.array(GENRES)[genre], dtype="str")
    items_frame = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": genre_name + " title " + pd.Series(number).astype("str"),
            "category": genre_name,
            "price": np.round(np.exp(rng.normal(np.log(12.0), 0.4, n_items)), 2),
        }
    )
    age_p = np.array([0.08, 0.2, 0.24, 0.2, 0.16, 0.12])
    customer_ids = np.arange(1, n_customers + 1, dtype=np.int64)
    customers = pd.DataFrame(
        {
            "customer_id": customer_ids,
            "age_band": pd.Series(
                np.array(AGE_BANDS)[_choose(rng, age_p, n_customers)], dtype="str"
            ),
        }
    )
    customer_index = pd.Index(customer_ids, name="customer_id")
    item_index = pd.Index(item_ids, name="item_id")
    factor_names = [f"factor_{n}" for n in range(n_factors)]
    return SyntheticData(
        events=events,
        items=items_frame,
        customers=customers,
        campaigns=_empty(CAMPAIGN_COLUMNS),
        campaign_members=_empty(MEMBER_COLUMNS),
        offers=_empty(OFFER_COLUMNS),
        redemptions=_empty(REDEMPTION_COLUMNS),
        truth=RatingsTruth(
            customer_factors=pd.DataFrame(
                customer_factors, index=customer_index, columns=factor_names
            ),
            item_factors=pd.DataFrame(item_factors, index=item_index, columns=factor_names),
            customer_bias=pd.Series(customer_bias, index=customer_index, name="customer_bias"),
            item_bias=pd.Series(item_bias, index=item_index, name="item_bias"),
            opinion=pd.DataFrame(opinion, index=customer_index, columns=item_index),
            popularity=pd.Series(popularity, index=item_index, name="popularity"),
            noise=noise,
        ),
    )


def write(data: SyntheticData, directory: str | Path, fmt: str = "csv") -> dict[str, Path]:
    """Write each table of ``data`` (not its truth) as ``<directory>/<table>.<fmt>``.

    A table without rows (the campaign tables of :func:`generate_ratings`) is not written:
    ingest refuses a file without data rows.

    Parameters
    ----------
    data : SyntheticData
    directory : str or Path
        Created if missing.
    fmt : {"csv", "parquet", "jsonl"}
        CSV with a header; Parquet; JSON lines with ISO timestamps.

    Returns
    -------
    dict of str to Path
        Table name -> the file written, in the order of :data:`TABLES` (tables without rows
        left out).
    """
    if fmt not in ("csv", "parquet", "jsonl"):
        raise ConfigError(f"unknown format {fmt!r}: use csv, parquet or jsonl")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in TABLES:
        frame: pd.DataFrame = getattr(data, name)
        if frame.empty:
            continue
        path = directory / f"{name}.{fmt}"
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True, date_format="iso")
        paths[name] = path
    return paths


def events_csv(
    path: str | Path,
    n_rows: int,
    seed: int = 0,
    n_customers: int = 100_000,
    n_items: int = 50_000,
    chunk_rows: int = 1_000_000,
) -> Path:
    """Write a large events CSV in chunks with bounded memory, for ingest benchmarks.

    The header is ``customer_id,item_id,timestamp,quantity,value,basket_id,store_id``; timestamps
    are ``YYYY-MM-DD HH:MM:SS`` in store hours over the year from 2024-01-01, roughly in
    chronological order. Rows of one basket are adjacent and share customer, timestamp and store,
    and list each item once; item popularity is Zipf-like, customer activity lognormal, and about
    1 % of rows are returns (negative quantity and value). Unlike :func:`generate` there is no
    latent taste.

    Parameters
    ----------
    path : str or Path
        The file to write (overwritten).
    n_rows : int
        Data rows to write, header not counted.
    seed : int
        Seed; the same seed and ``chunk_rows`` give the same file.
    n_customers, n_items : int
        Customer ids are 1..n_customers; item ids are drawn above 100000.
    chunk_rows : int
        Rows drawn and written at a time; peak memory is about 250 bytes x chunk_rows.

    Returns
    -------
    Path
        ``path``.
    """
    if n_rows < 0 or chunk_rows < 1 or n_customers < 1 or n_items < 1:
        raise ConfigError("n_rows must not be negative; chunk_rows, n_customers, n_items positive")
    path = Path(path)
    rng = np.random.default_rng(seed)
    days = 365
    origin = np.datetime64("2024-01-01T00:00:00", "s")
    item_ids = _item_ids(rng, n_items)
    price = np.round(np.maximum(np.exp(rng.normal(np.log(3.0), 0.8, n_items)), 0.25), 2)
    item_cdf = np.cumsum(rng.permutation(1.0 / np.arange(1, n_items + 1) ** 1.05))
    customer_cdf = np.cumsum(np.exp(rng.normal(0.0, 1.0, n_customers)))
    store_cdf = np.cumsum(STORE_WEIGHTS)
    width = max(6, len(str(n_rows)))
    n_chunks = max(1, -(-n_rows // chunk_rows))
    schema = pa.schema(
        [
            ("customer_id", pa.int64()),
            ("item_id", pa.int64()),
            ("timestamp", pa.timestamp("s")),
            ("quantity", pa.int64()),
            ("value", pa.float64()),
            ("basket_id", pa.string()),
            ("store_id", pa.int64()),
        ]
    )
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    next_basket = 1
    with pa.OSFile(str(path), "wb") as sink:
        sink.write((",".join(EVENTS_CSV_COLUMNS) + "\n").encode())
        with pa_csv.CSVWriter(sink, schema, write_options=options) as writer:
            for chunk in range(n_chunks):
                n = min(chunk_rows, n_rows - chunk * chunk_rows)
                sizes = _basket_sizes(rng, n, mean=4.5)
                n_baskets = len(sizes)
                day = np.floor((chunk + rng.random(n_baskets)) * days / n_chunks).astype(np.int64)
                second = _time_of_day(rng, n_baskets)
                order = np.lexsort((second, day))
                day, second = day[order], second[order]
                customer = _draw_cdf(rng, customer_cdf, n_baskets) + 1
                store = _draw_cdf(rng, store_cdf, n_baskets) + 1
                basket = np.repeat(np.arange(n_baskets), sizes)
                item = _distinct_within(basket, _draw_cdf(rng, item_cdf, n), n_items)
                quantity = QUANTITIES[_choose(rng, QUANTITY_P, n)]
                promo = np.where(
                    rng.random(n) < 0.1, PROMO_SHARES[rng.integers(len(PROMO_SHARES), size=n)], 0.0
                )
                quantity[rng.random(n) < 0.01] *= -1
                value = np.round(quantity * price[item] * (1 - promo), 2)
                seconds = (day * SECONDS_PER_DAY + second)[basket] + origin.astype(np.int64)
                table = pa.table(
                    [
                        pa.array(customer[basket]),
                        pa.array(item_ids[item]),
                        pa.array(seconds, type=pa.timestamp("s")),
                        pa.array(quantity),
                        pa.array(value),
                        _basket_ids(next_basket + basket, width),
                        pa.array(store[basket]),
                    ],
                    schema=schema,
                )
                writer.write_table(table)
                next_basket += n_baskets
    return path


def _distinct_within(groups: np.ndarray, values: np.ndarray, modulo: int) -> np.ndarray:
    """``values`` with repeats inside a group moved to the next free value (mod ``modulo``): a
    basket lists each item once, as a till does (a second unit is quantity 2)."""
    values = values.copy()
    for _ in range(modulo):  # a group larger than ``modulo`` keeps some repeats
        key = groups.astype(np.int64) * modulo + values
        order = np.argsort(key, kind="stable")
        repeat = np.zeros(len(key), dtype=bool)
        repeat[1:] = key[order][1:] == key[order][:-1]
        if not repeat.any():
            return values
        moved = order[repeat]
        values[moved] = (values[moved] + 1) % modulo
    return values


# --- catalog and customers -------------------------------------------------------------------


def _draw_catalog(rng: np.random.Generator, n_items: int, categories: list) -> dict:
    """Items with department, category, brand, price and Zipf popularity within department."""
    n_categories = len(categories)
    cat_dept = np.array([DEPARTMENTS.index(d) for d, _, _ in categories])
    cat_name = np.array([c for _, c, _ in categories], dtype=object)
    cat_price = np.array([p for _, _, p in categories])
    category = rng.permutation(np.arange(n_items) % n_categories)
    dept = cat_dept[category]
    private = rng.random(n_items) < 0.3
    brand = np.where(
        private, PRIVATE_BRAND, np.array(BRANDS)[rng.integers(len(BRANDS), size=n_items)]
    )
    price = cat_price[category] * np.exp(rng.normal(0.0, 0.35, n_items)) * np.where(private, 0.8, 1)
    price = np.round(np.maximum(price, 0.25), 2)

    # popularity: a random ranking within each department, weight 1 / rank ** 1.1
    by_dept = np.lexsort((rng.random(n_items), dept))
    rank = np.empty(n_items, np.int64)
    rank[by_dept] = _rank_within(dept[by_dept])
    weight = 1.0 / (rank + 1.0) ** 1.1
    popularity = weight / np.bincount(dept, weight)[dept]
    dept_items = np.full((len(DEPARTMENTS), np.bincount(dept).max()), -1)
    dept_items[dept, rank] = np.arange(n_items)
    dept_popularity = np.zeros(dept_items.shape)
    dept_popularity[dept, rank] = popularity

    item_ids = _item_ids(rng, n_items)
    by_category = np.lexsort((item_ids, category))
    number = np.empty(n_items, np.int64)
    number[by_category] = _rank_within(category[by_category]) + 1
    frame = pd.DataFrame(
        {
            "item_id": item_ids,
            "title": pd.Series(brand, dtype="str")
            + " "
            + pd.Series(cat_name[category], dtype="str")
            + " "
            + pd.Series(number).astype("str"),
            "department": pd.Series(np.array(DEPARTMENTS)[dept], dtype="str"),
            "category": pd.Series(cat_name[category], dtype="str"),
            "brand": pd.Series(brand, dtype="str"),
            "price": price,
        }
    )
    return {
        "frame": frame,
        "ids": item_ids,
        "dept": dept,
        "category": category,
        "cat_dept": cat_dept,
        "price": price,
        "popularity": popularity,
        "dept_items": dept_items,
        "dept_popularity": dept_popularity,
    }


def _draw_customers(rng: np.random.Generator, n: int, days: int) -> dict:
    """Attributes, taste, trip frequency and the active span [join_day, end_day) in days."""
    n_dept = len(DEPARTMENTS)
    baby = DEPARTMENTS.index("BABY")
    favourite = rng.integers(n_dept, size=n)
    has_kids = (favourite == baby) | (rng.random(n) < 0.3)
    household_size = np.where(
        has_kids, 3 + np.minimum(rng.poisson(0.8, n), 4), 1 + (rng.random(n) < 0.55)
    ).astype(np.int64)
    age_p = np.array([0.08, 0.2, 0.24, 0.2, 0.16, 0.12])
    income_p = np.array([0.15, 0.22, 0.24, 0.17, 0.14, 0.08])

    # Dirichlet taste with its largest share moved onto the favoured department
    share = rng.dirichlet(np.full(n_dept, 0.6), size=n)
    rows = np.arange(n)
    largest = share.argmax(axis=1)
    share[rows, largest], share[rows, favourite] = share[rows, favourite], share[rows, largest]
    taste = 0.4 * np.eye(n_dept)[favourite] + 0.6 * share
    taste[~has_kids, baby] *= 0.05  # shrinking a non-favourite share keeps the favourite largest
    taste /= taste.sum(axis=1, keepdims=True)

    joins_late = rng.random(n) < 0.2
    join_day = np.where(joins_late, rng.integers(0, max(1, days // 2), size=n), 0)
    churns = rng.random(n) < 0.15
    churn_day = join_day + np.ceil((days - join_day) * rng.uniform(0.3, 0.8, n)).astype(np.int64)
    end_day = np.where(churns, np.minimum(churn_day, days), days)
    trip_gap = np.clip(np.exp(rng.normal(np.log(8.0), 0.6, n)), 2.0, 40.0)
    responsive = rng.random(n) < 0.35
    responsiveness = np.where(responsive, rng.beta(6, 3, n), rng.beta(1, 25, n))
    home_store = _draw_cdf(rng, np.cumsum(STORE_WEIGHTS), n)

    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "age_band": pd.Series(np.array(AGE_BANDS)[_choose(rng, age_p, n)], dtype="str"),
            "income_band": pd.Series(
                np.array(INCOME_BANDS)[_choose(rng, income_p, n)], dtype="str"
            ),
            "has_kids": has_kids,
            "household_size": household_size,
        }
    )
    return {
        "frame": frame,
        "n": n,
        "favourite": favourite,
        "taste": taste,
        "household_size": household_size,
        "join_day": join_day,
        "end_day": end_day,
        "churns": churns & (end_day < days),
        "trip_gap": trip_gap,
        "responsiveness": responsiveness,
        "home_store": home_store,
    }


def _draw_staples(rng: np.random.Generator, people: dict, catalog: dict) -> dict:
    """2-6 distinct staple items per customer, their cycles and due times (days, float)."""
    n = people["n"]
    n_wanted = rng.integers(2, 7, size=n)
    candidate_customer = np.repeat(np.arange(n), 10)
    from_favourite = rng.random(len(candidate_customer)) < 0.75
    dept = np.where(
        from_favourite,
        people["favourite"][candidate_customer],
        _choose_per_row(rng, people["taste"], candidate_customer),
    )
    item = _pick_in_department(rng, catalog, dept)
    n_items = len(catalog["price"])
    _, first = np.unique(candidate_customer * n_items + item, return_index=True)
    first.sort()
    customer, item = candidate_customer[first], item[first]
    keep = _rank_within(customer) < n_wanted[customer]
    customer, item = customer[keep], item[keep]
    cycle = rng.uniform(5.0, 30.0, len(customer))

    # due times: a random phase, then gaps of cycle x (1 +- 10 % jitter) up to the end day
    join, end = people["join_day"][customer], people["end_day"][customer]
    phase = join + cycle * rng.random(len(customer))
    n_due = np.maximum(0, np.floor((end - phase) / (0.7 * cycle)).astype(np.int64) + 1)
    owner = np.repeat(np.arange(len(customer)), n_due)
    gap = cycle[owner] * np.clip(1 + 0.1 * rng.standard_normal(len(owner)), 0.7, 1.3)
    starts = np.cumsum(n_due) - n_due
    gap[starts[n_due > 0]] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[starts[n_due > 0]], n_due[n_due > 0])
    due = phase[owner] + elapsed
    in_span = due < end[owner]
    return {
        "customer": customer,
        "item": item,
        "cycle": cycle,
        "due_customer": customer[owner][in_span],
        "due_item": item[owner][in_span],
        "due_time": due[in_span],
        "cycle_of_due": cycle[owner][in_span],
    }


# --- trips and basket contents ---------------------------------------------------------------


def _draw_trips(
    rng: np.random.Generator, people: dict, staples: dict, days: int, first_weekday: int
) -> tuple[dict, np.ndarray]:
    """Planned trips (Poisson, busier at weekends) plus trips made only because staples fell due.

    A staple due within min(35 % of its cycle, 5 days) of a planned trip is bought on that trip.

    Returns
    -------
    trips : dict of arrays of shape (n_trips,)
        customer (0-based), day (since the start), second (of the day), store (0-based),
        has_staple.
    due_trip : ndarray of shape (n_dues,)
        The trip on which each staple due is bought.
    """
    join, end, gap = people["join_day"], people["end_day"], people["trip_gap"]
    boost = WEEKDAY_WEIGHTS.max() / WEEKDAY_WEIGHTS.mean()
    n_candidates = rng.poisson((end - join) / gap * boost)
    customer = np.repeat(np.arange(people["n"]), n_candidates)
    time = join[customer] + rng.random(len(customer)) * (end - join)[customer]
    weekday = (first_weekday + np.floor(time).astype(np.int64)) % 7
    accept = rng.random(len(time)) < WEEKDAY_WEIGHTS[weekday] / WEEKDAY_WEIGHTS.max()
    customer, time = customer[accept], time[accept]
    order = np.lexsort((time, customer))
    customer, time = customer[order], time[order]

    span = float(days + 64)  # keeps customers apart on one sorted key
    due_customer, due_time = staples["due_customer"], staples["due_time"]
    tolerance = np.minimum(0.35 * staples["cycle_of_due"], 5.0)
    nearest = np.zeros(len(due_time), np.int64)
    distance = np.full(len(due_time), np.inf)
    if len(time):
        key = customer * span + time
        query = due_customer * span + due_time
        position = np.searchsorted(key, query)
        for side in (np.clip(position - 1, 0, len(key) - 1), np.clip(position, 0, len(key) - 1)):
            d = np.where(customer[side] == due_customer, np.abs(key[side] - query), np.inf)
            closer = d < distance
            nearest[closer], distance[closer] = side[closer], d[closer]
    snapped = distance <= tolerance

    # unsnapped dues make trips of their own, one per customer and day
    own_key = due_customer * (days + 1) + np.floor(due_time).astype(np.int64)
    own_trips, own_index = np.unique(own_key[~snapped], return_inverse=True)
    due_trip = nearest
    due_trip[~snapped] = len(time) + own_index

    trip_customer = np.concatenate([customer, own_trips // (days + 1)])
    trip_day = np.concatenate([np.floor(time).astype(np.int64), own_trips % (days + 1)])
    n_trips = len(trip_customer)
    away = rng.random(n_trips) < 0.15
    store = np.where(
        away,
        _draw_cdf(rng, np.cumsum(STORE_WEIGHTS), n_trips),
        people["home_store"][trip_customer],
    )
    return {
        "customer": trip_customer,
        "day": trip_day,
        "second": _time_of_day(rng, n_trips),
        "store": store,
        "has_staple": np.bincount(due_trip, minlength=n_trips) > 0,
    }, due_trip


def _exploratory_rows(
    rng: np.random.Generator, people: dict, catalog: dict, staples: dict, trips: dict
) -> dict:
    """Picks from taste x popularity on every trip (never the customer's staples), a few views."""
    customer = trips["customer"]
    n_picks = rng.poisson(2.0 + 0.7 * people["household_size"][customer]) + ~trips["has_staple"]
    n_views = rng.poisson(0.07, len(customer))
    trip = np.repeat(np.arange(len(customer)), n_picks + n_views)
    view = _rank_within(trip) >= n_picks[trip]
    dept = _choose_per_row(rng, people["taste"], customer[trip])
    item = _pick_in_department(rng, catalog, dept)
    n_items = len(catalog["price"])
    own_staple = np.isin(
        customer[trip] * n_items + item, staples["customer"] * n_items + staples["item"]
    )
    return {"trip": trip[~own_staple], "item": item[~own_staple], "view": view[~own_staple]}


def _price_rows(
    rng: np.random.Generator,
    catalog: dict,
    day: np.ndarray,
    item: np.ndarray,
    view: np.ndarray,
    coupon: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantity, value and discount (currency) per row, with weekly shelf promotions.

    About 10 % of items are on promotion in a given week; a coupon applies on top. Views get
    quantity 1, value 0 and discount 0.
    """
    n_items, n_weeks = len(catalog["price"]), int(day.max(initial=0)) // 7 + 1
    promo = np.where(
        rng.random((n_items, n_weeks)) < 0.1,
        PROMO_SHARES[rng.integers(len(PROMO_SHARES), size=(n_items, n_weeks))],
        0.0,
    )
    quantity = QUANTITIES[_choose(rng, QUANTITY_P, len(item))]
    quantity[coupon > 0] = np.minimum(quantity[coupon > 0], 2)
    share = 1 - (1 - promo[item, day // 7]) * (1 - coupon)
    gross = quantity * catalog["price"][item]
    discount = np.round(gross * share, 2)
    value = np.round(gross - discount, 2)
    quantity[view], value[view], discount[view] = 1, 0.0, 0.0
    return quantity, value, discount


def _add_returns(
    rng: np.random.Generator, trips: dict, people: dict, rows: tuple, days: int
) -> tuple:
    """Append returns of ~1 % of purchases as one-row baskets 1-14 days later (adds trips)."""
    trip, item, view, quantity, value, discount = rows
    returned = np.flatnonzero(~view & (rng.random(len(trip)) < RETURN_SHARE))
    customer = trips["customer"][trip[returned]]
    day = trips["day"][trip[returned]] + rng.integers(1, 15, len(returned))
    in_span = day < np.minimum(people["end_day"][customer], days)
    returned, customer, day = returned[in_span], customer[in_span], day[in_span]
    new_trip = len(trips["customer"]) + np.arange(len(returned))
    trips["customer"] = np.concatenate([trips["customer"], customer])
    trips["day"] = np.concatenate([trips["day"], day])
    trips["second"] = np.concatenate([trips["second"], _time_of_day(rng, len(returned))])
    trips["store"] = np.concatenate([trips["store"], trips["store"][trip[returned]]])
    return (
        np.concatenate([trip, new_trip]),
        np.concatenate([item, item[returned]]),
        np.concatenate([view, view[returned]]),
        np.concatenate([quantity, -quantity[returned]]),
        np.concatenate([value, -value[returned]]),
        np.concatenate([discount, discount[returned]]),
    )


def _events_frame(trips: dict, catalog: dict, origin: np.datetime64, rows: tuple) -> pd.DataFrame:
    """The events table, baskets numbered chronologically over the trips that hold rows."""
    trip, item, view, quantity, value, discount = rows
    used = np.unique(trip)
    order = used[np.lexsort((trips["customer"][used], trips["second"][used], trips["day"][used]))]
    basket_of_trip = np.full(len(trips["customer"]), -1)
    basket_of_trip[order] = np.arange(1, len(order) + 1)
    basket = basket_of_trip[trip]
    item_ids = catalog["ids"][item]
    row_order = np.lexsort((item_ids, view, basket))
    trip, basket = trip[row_order], basket[row_order]
    width = max(6, len(str(len(order))))
    events = pd.DataFrame(
        {
            "customer_id": trips["customer"][trip].astype(np.int64) + 1,
            "item_id": item_ids[row_order],
            "event_type": pd.Series(np.where(view[row_order], "view", "purchase"), dtype="str"),
            "timestamp": _timestamps(origin, trips["day"][trip], trips["second"][trip]),
            "quantity": quantity[row_order].astype(np.int64),
            "value": value[row_order],
            "basket_id": _basket_ids(basket, width).to_pandas().astype("str"),
            "store_id": trips["store"][trip].astype(np.int64) + 1,
            "discount": discount[row_order],
        }
    )
    return events


# --- campaigns ---------------------------------------------------------------------------------


@dataclass
class _Campaigns:
    """What :func:`_draw_campaigns` draws; ``coupon_*`` are the purchase rows of redemptions."""

    campaigns: pd.DataFrame
    members: pd.DataFrame
    offers: pd.DataFrame
    redemptions: pd.DataFrame  # with the trip index in place of the timestamp
    offer_discount: pd.Series
    coupon_trip: np.ndarray
    coupon_item: np.ndarray
    coupon_share: np.ndarray


def _draw_campaigns(
    rng: np.random.Generator,
    n_campaigns: int,
    days: int,
    origin: np.datetime64,
    people: dict,
    catalog: dict,
    trips: dict,
) -> _Campaigns:
    """Campaign windows, members, offers and redemptions, with the coupon purchase rows."""
    span = days + 64  # keeps customers apart on one sorted key
    by_customer = np.lexsort((trips["second"], trips["day"], trips["customer"]))
    trip_key = trips["customer"][by_customer] * span + trips["day"][by_customer]
    taste = people["taste"]
    member_share = {"A": 0.25, "B": 0.45, "C": 0.65}
    rows: dict[str, list] = {
        name: []
        for name in ("campaign", "type", "name", "first_day", "last_day", "members", "offers")
    }
    empty = np.empty(0, np.int64)
    redeemed = {name: [empty] for name in ("customer", "offer", "campaign", "trip", "item")}
    redeemed["share"], offer_discount = [np.empty(0)], [np.empty(0)]
    next_offer = 1
    for number in range(1, n_campaigns + 1):
        kind = CAMPAIGN_TYPES[rng.integers(len(CAMPAIGN_TYPES))]
        duration = min(days, int(rng.integers(14, 43)))
        first_day = int(rng.integers(0, days - duration + 1))
        last_day = first_day + duration - 1
        theme = CAMPAIGN_THEMES[rng.integers(len(CAMPAIGN_THEMES))]
        for name, value in zip(
            ("campaign", "type", "name", "first_day", "last_day"),
            (number, kind, f"{theme} {number}", first_day, last_day),
            strict=True,
        ):
            rows[name].append(value)
        member = np.flatnonzero(rng.random(people["n"]) < member_share[kind])
        rows["members"].append(np.column_stack([np.full(len(member), number), member + 1]))

        # offers: 1-3 items of one category; half the offers in the campaign's focus department
        n_offers = int(rng.integers(3, 8))
        offer_ids = next_offer + np.arange(n_offers)
        next_offer += n_offers
        focus = rng.integers(len(DEPARTMENTS))
        offer_items = np.full((n_offers, 3), -1)
        offer_size = np.zeros(n_offers, np.int64)
        offer_dept = np.zeros(n_offers, np.int64)
        for k in range(n_offers):
            dept = focus if rng.random() < 0.5 else rng.integers(len(DEPARTMENTS))
            category = rng.choice(np.flatnonzero(catalog["cat_dept"] == dept))
            in_category = np.flatnonzero(catalog["category"] == category)
            size = min(int(rng.integers(1, 4)), len(in_category))
            weight = catalog["popularity"][in_category]
            chosen = rng.choice(in_category, size, replace=False, p=weight / weight.sum())
            offer_items[k, :size], offer_size[k], offer_dept[k] = chosen, size, dept
            rows["offers"].append(
                np.column_stack([np.full(size, offer_ids[k]), np.full(size, number), chosen])
            )
        discount = COUPON_SHARES[rng.integers(len(COUPON_SHARES), size=n_offers)]
        offer_discount.append(discount)

        # every (member, offer) pair; likelier for responsive members and liked departments
        who = np.repeat(member, n_offers)
        offer = np.tile(np.arange(n_offers), len(member))
        liking = taste[who, offer_dept[offer]] / taste[who].max(axis=1)
        redeems = rng.random(len(who)) < people["responsiveness"][who] * liking
        low = np.searchsorted(trip_key, who * span + first_day, side="left")
        high = np.searchsorted(trip_key, who * span + last_day, side="right")
        pick = low + np.floor(rng.random(len(who)) * (high - low)).astype(np.int64)
        on_a_trip = redeems & (high > low)  # a member who does not shop in the window cannot
        who, offer, pick = who[on_a_trip], offer[on_a_trip], pick[on_a_trip]
        slot = np.floor(rng.random(len(offer)) * offer_size[offer]).astype(np.int64)
        redeemed["customer"].append(who + 1)
        redeemed["offer"].append(offer_ids[offer])
        redeemed["campaign"].append(np.full(len(who), number))
        redeemed["trip"].append(by_customer[pick])
        redeemed["item"].append(offer_items[offer, slot])
        redeemed["share"].append(discount[offer])

    first_day = np.array(rows["first_day"], np.int64)
    last_day = np.array(rows["last_day"], np.int64)
    campaigns = pd.DataFrame(
        {
            "campaign_id": np.array(rows["campaign"], np.int64),
            "type": pd.Series(rows["type"], dtype="str"),
            "name": pd.Series(rows["name"], dtype="str"),
            "start": _timestamps(origin, first_day, np.zeros_like(first_day)),
            "end": _timestamps(origin, last_day, np.full_like(last_day, SECONDS_PER_DAY - 1)),
        }
    )
    members = pd.DataFrame(
        np.concatenate([np.empty((0, 2), np.int64), *rows["members"]]).astype(np.int64),
        columns=["campaign_id", "customer_id"],
    )
    offers = pd.DataFrame(
        np.concatenate([np.empty((0, 3), np.int64), *rows["offers"]]).astype(np.int64),
        columns=["offer_id", "campaign_id", "item_id"],
    )
    offers["item_id"] = catalog["ids"][offers["item_id"].to_numpy()]
    flat = {name: np.concatenate(parts) for name, parts in redeemed.items()}
    redemptions = pd.DataFrame(
        {
            "customer_id": flat["customer"].astype(np.int64),
            "offer_id": flat["offer"].astype(np.int64),
            "campaign_id": flat["campaign"].astype(np.int64),
            "trip": flat["trip"],
        }
    )
    discount = np.concatenate(offer_discount)
    return _Campaigns(
        campaigns=campaigns,
        members=members,
        offers=offers,
        redemptions=redemptions,
        offer_discount=pd.Series(
            discount,
            index=pd.Index(np.arange(1, len(discount) + 1, dtype=np.int64), name="offer_id"),
            name="offer_discount",
        ),
        coupon_trip=flat["trip"],
        coupon_item=flat["item"],
        coupon_share=flat["share"],
    )


def _truth(
    people: dict, staples: dict, catalog: dict, offer_discount: pd.Series, origin: np.datetime64
) -> Truth:
    ids = pd.Index(people["frame"]["customer_id"], name="customer_id")
    zero = np.zeros(people["n"], np.int64)
    churned_at = _timestamps(origin, people["end_day"], zero).where(people["churns"])
    return Truth(
        favourite_department=pd.Series(
            np.array(DEPARTMENTS)[people["favourite"]],
            index=ids,
            dtype="str",
            name="favourite_department",
        ),
        staples=pd.DataFrame(
            {
                "customer_id": staples["customer"].astype(np.int64) + 1,
                "item_id": catalog["ids"][staples["item"]],
                "cycle_days": staples["cycle"],
            }
        ),
        taste=pd.DataFrame(people["taste"], index=ids, columns=list(DEPARTMENTS)),
        responsiveness=pd.Series(people["responsiveness"], index=ids, name="responsiveness"),
        trip_gap_days=pd.Series(people["trip_gap"], index=ids, name="trip_gap_days"),
        joined_at=pd.Series(
            _timestamps(origin, people["join_day"], zero).to_numpy(), index=ids, name="joined_at"
        ),
        churned_at=pd.Series(churned_at.to_numpy(), index=ids, name="churned_at"),
        popularity=pd.Series(
            catalog["popularity"], index=pd.Index(catalog["ids"], name="item_id"), name="popularity"
        ),
        offer_discount=offer_discount,
    )


# --- vectorised helpers ------------------------------------------------------------------------


def _empty(columns: dict[str, str]) -> pd.DataFrame:
    """A frame without rows with these columns and dtypes."""
    return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in columns.items()})


def _choose(rng: np.random.Generator, p: np.ndarray, n: int) -> np.ndarray:
    """n draws of an index with probabilities p."""
    return _draw_cdf(rng, np.cumsum(p), n)


def _draw_cdf(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """n draws of an index from an unnormalised cumulative weight array of shape (k,)."""
    index = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    return np.minimum(index, len(cdf) - 1)


def _choose_per_row(rng: np.random.Generator, p: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each entry r of rows, a column drawn with probabilities p[r]; p of shape (m, k).

    Zero-probability columns (padding) are never drawn. One searchsorted over the rows' CDFs
    laid end to end, each shifted by its row number.
    """
    m, k = p.shape
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    cdf[:, -1] = 1.0
    column = np.searchsorted((cdf + np.arange(m)[:, None]).ravel(), rows + rng.random(len(rows)))
    column = column - rows * k
    last = k - 1 - np.argmax(p[:, ::-1] > 0, axis=1)  # rounding can land past the last real column
    return np.clip(column, 0, last[rows])


def _pick_in_department(rng: np.random.Generator, catalog: dict, dept: np.ndarray) -> np.ndarray:
    """An item index per entry of dept, by popularity within that department."""
    rank = _choose_per_row(rng, catalog["dept_popularity"], dept)
    return catalog["dept_items"][dept, rank]


def _rank_within(groups: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal values; groups must be sorted."""
    return np.arange(len(groups)) - np.searchsorted(groups, groups, side="left")


def _item_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct, sorted, non-contiguous item ids above FIRST_ITEM_ID."""
    return FIRST_ITEM_ID + np.sort(rng.choice(10 * n, n, replace=False)).astype(np.int64)


def _time_of_day(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight in store hours: a late-morning and an after-work peak."""
    opening, closing = STORE_HOURS
    evening = rng.random(n) < 0.45
    hour = np.where(evening, rng.normal(17.5, 1.5, n), rng.normal(11.5, 2.0, n))
    outside = (hour < opening) | (hour >= closing)
    hour[outside] = rng.uniform(opening, closing, int(outside.sum()))
    return np.minimum((hour * 3600).astype(np.int64), int(closing * 3600) - 1)


def _timestamps(origin: np.datetime64, day: np.ndarray, second: np.ndarray) -> pd.Series:
    """datetime64[us] Series of origin + day days + second seconds."""
    offset = (np.asarray(day, np.int64) * SECONDS_PER_DAY + second).astype("timedelta64[s]")
    return pd.Series((origin + offset).astype("datetime64[us]"))


def _basket_ids(numbers: np.ndarray, width: int) -> pa.Array:
    """Basket ids like "b000123" for positive ints, zero-padded to width digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise("b", digits, "")


def _basket_sizes(rng: np.random.Generator, n_rows: int, mean: float) -> np.ndarray:
    """Basket sizes (1 + Poisson) summing exactly to n_rows."""
    sizes = np.empty(0, np.int64)
    while sizes.sum() < n_rows:
        more = 1 + rng.poisson(mean - 1, int(n_rows / mean * 1.1) + 16)
        sizes = np.concatenate([sizes, more])
    total = np.cumsum(sizes)
    n_baskets = int(np.searchsorted(total, n_rows)) + 1 if n_rows else 0
    sizes = sizes[:n_baskets]
    if n_baskets:
        sizes[-1] -= total[n_baskets - 1] - n_rows
    return sizes
