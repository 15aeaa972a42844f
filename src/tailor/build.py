"""Fit what exists and publish it as one build, atomically.

A build is a folder ``<builds>/<build id>/`` with ``manifest.json`` and the artifacts the CLI,
the Python API and (later) the HTTP API and dashboard read. It is written under a temporary name
and renamed into place, then the ``CURRENT`` pointer is replaced atomically: a reader sees the
old build or the new one, never half of one, and a failed build never replaces a good one.

A build holds the Dataset (``dataset.pkl``, plus its id maps and interaction matrix as ``.npy``
/ ``.npz``), every recommender of :data:`tailor.recommend.REGISTRY` fitted on it
(``recommenders/<name>.pkl``), and in the manifest the validation figures that chose the default
recommender, and the pairs of items frequently bought together (``rules.parquet``, see
:mod:`tailor.recommend.rules`). Customer intelligence and reports add their artifacts here as
they arrive. Every file of a build is written and read through :mod:`tailor.privacy.crypto`:
encrypted (AES-GCM) when an encryption key is configured.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor import __version__
from tailor.customers.intelligence import NoPurchases, analyse_customers
from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.marketing.offers import NoCampaigns
from tailor.marketing.targeting import analyse_offers
from tailor.privacy.consent import save_opt_outs
from tailor.privacy.crypto import read_build_file, reading, write_build_file, writing
from tailor.privacy.pseudonym import FINGERPRINT_META
from tailor.recommend import REGISTRY, Recommender, factory
from tailor.recommend.rules import association_rules
from tailor.store.warehouse import Warehouse

VALIDATION_DAYS = 28
CONSENT_FILE = "opt_outs.parquet"
"""The consent opt-outs as the build saw them (see :func:`tailor.privacy.consent.save_opt_outs`)."""
SELECTION_K = 20
FALLBACK = "recency_frequency"  # the default when there is too little data to validate
MIN_VALIDATION_CUSTOMERS = 20
RULES_MIN_SUPPORT = 0.0005  # share of baskets; all pairs of The Complete Journey in seconds

CURRENT = "CURRENT"


def builds_dir(db: Path) -> Path:
    """Where the builds of a warehouse live: ``shop.duckdb`` -> ``shop.builds/``."""
    return db.with_name(db.stem + ".builds")


@dataclass(frozen=True)
class BuildInfo:
    build_id: str
    path: Path
    manifest: dict[str, Any]


def build(
    wh: Warehouse,
    directory: Path,
    as_of: str | None = None,
    weights: Mapping[str, float] | None = None,
    recommenders: Sequence[str] | None = None,
    validation_days: float = VALIDATION_DAYS,
    progress: Callable[[str, float], None] | None = None,
) -> BuildInfo:
    """Build the dataset and every model, and publish them as the current build.

    ``weights`` are the interaction weights per event type (``[dataset.weights]`` of
    tailor.toml), over the defaults of :data:`tailor.dataset.DEFAULT_WEIGHTS`.
    ``recommenders`` names the recommenders to fit (default: all of
    :data:`tailor.recommend.REGISTRY`); the default one is the best on a validation split of the
    last ``validation_days`` of the build's own data.
    """
    start = time.perf_counter()
    dataset = Dataset.from_warehouse(wh, as_of=as_of, weights=weights)
    steps = {"dataset": round(time.perf_counter() - start, 3)}
    fitted, selection = _fit_recommenders(dataset, recommenders, validation_days, progress, steps)
    started = time.perf_counter()
    rules = association_rules(dataset, min_support=RULES_MIN_SUPPORT)
    steps["rules"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    intelligence, customers_skipped = None, None
    try:
        intelligence = analyse_customers(wh, as_of=dataset.as_of, progress=progress)
    except NoPurchases as exc:  # ratings-only data: recommenders, but no customer analysis
        customers_skipped = str(exc)
    steps["customers"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    offers, offers_skipped = None, None
    try:
        offers = analyse_offers(wh, as_of=dataset.as_of, progress=progress)
    except NoCampaigns as exc:  # no campaign history: everything else, but no offer scores
        offers_skipped = str(exc)
    steps["offers"] = round(time.perf_counter() - started, 3)

    def fill(staging: Path) -> dict[str, Any]:
        save_dataset_arrays(dataset, staging)
        if fitted:
            save_dataset(dataset, staging / "dataset.pkl")
            (staging / "recommenders").mkdir()
            for name, model in fitted.items():
                model.save(staging / "recommenders" / f"{name}.pkl")
        save_rules(rules, staging / "rules.parquet")
        if intelligence is not None:
            intelligence.save(staging / "customers")
        if offers is not None:
            offers.save(staging / "offers")
        save_opt_outs(wh, staging / CONSENT_FILE)
        fingerprint = wh.get_meta(FINGERPRINT_META)
        # Customers named by pseudonyms: readers without the warehouse look ids up by it.
        pseudonyms = {} if fingerprint is None else {FINGERPRINT_META: fingerprint}
        return {
            **pseudonyms,
            "warehouse": str(wh.path.resolve()),
            "dataset": dataset.summary(),
            "weights": dict(dataset.weights),
            "recommenders": selection,
            "rules": {
                "min_support": RULES_MIN_SUPPORT,
                "count": len(rules),
                "baskets": rules.attrs["baskets"],
            },
            "customers": (
                {"skipped": customers_skipped} if intelligence is None else intelligence.summary
            ),
            "offers": {"skipped": offers_skipped} if offers is None else offers.summary,
            "steps": steps,
        }

    return publish(directory, fill)


def publish(directory: Path, fill: Callable[[Path], dict[str, Any]]) -> BuildInfo:
    """Publish a new build in ``directory`` atomically and make it the current one.

    ``fill(staging)`` writes the artifacts into an empty staging folder and returns the
    manifest's content (the build id, time and version are added here). A reader sees the old
    build or the new one, never half of one; when ``fill`` fails nothing is published.
    """
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".{build_id}.partial"
    try:
        staging.mkdir()
        manifest = {
            "build_id": build_id,
            "created_at": datetime.now(UTC).isoformat(),
            "tailor_version": __version__,
            **fill(staging),
        }
        write_build_file(staging / "manifest.json", json.dumps(manifest, indent=2).encode())
        final = directory / build_id
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    pointer = directory / f".{CURRENT}.tmp"
    try:
        pointer.write_text(build_id)
        os.replace(pointer, directory / CURRENT)
    except BaseException:
        # Not published: a build folder no pointer names would only be litter.
        pointer.unlink(missing_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    return BuildInfo(build_id, final, manifest)


def current_build(directory: Path) -> BuildInfo:
    """The published build a reader should use."""
    try:
        build_id = (directory / CURRENT).read_text().strip()
    except FileNotFoundError:
        raise TailorError(f"{directory}: no build yet; run `tailor build`") from None
    path = directory / build_id
    try:
        manifest = json.loads(read_build_file(path / "manifest.json"))
    except (OSError, ValueError) as exc:  # an EncryptionError says for itself what is wrong
        raise TailorError(
            f"{directory}: the current build {build_id!r} cannot be read ({exc}); "
            "run `tailor build`"
        ) from None
    return BuildInfo(build_id, path, manifest)


def _fit_recommenders(
    dataset: Dataset,
    names: Sequence[str] | None,
    validation_days: float,
    progress: Callable[[str, float], None] | None,
    steps: dict[str, float],
) -> tuple[dict[str, Recommender], dict[str, Any]]:
    """Validate every recommender on the last ``validation_days`` of the data, pick the default,
    then fit them all on the whole dataset."""
    from tailor.evaluate.runner import evaluate_models, pick_default

    names = list(REGISTRY if names is None else names)
    factories = {n: factory(n) for n in names}  # unknown names fail here, before any work
    if not names or len(dataset.events) == 0:
        return {}, {}
    start = time.perf_counter()
    selection: dict[str, Any] = {"k": SELECTION_K, "validation_days": validation_days}
    try:
        train, valid = dataset.temporal_split(validation_days)
        results = evaluate_models(
            train, valid, factories, SELECTION_K, progress=progress, confidence=False
        )
        customers = min(figures["customers"] for figures in results.values())
        if customers < MIN_VALIDATION_CUSTOMERS:
            raise TailorError(
                f"only {customers} customers to validate on (at least "
                f"{MIN_VALIDATION_CUSTOMERS} needed for a fair choice)"
            )
        selection["default"] = pick_default(results, SELECTION_K)
        selection["validation"] = results
    except TailorError as exc:  # too little data to validate: a customer's own items first
        selection["default"] = FALLBACK if FALLBACK in names else names[0]
        selection["validation"] = {"skipped": str(exc)}
    steps["validation"] = round(time.perf_counter() - start, 3)
    fitted = {}
    for n, (name, make) in enumerate(factories.items()):
        if progress:
            progress("fitting recommenders", n / len(factories))
        started = time.perf_counter()
        fitted[name] = make().fit(dataset)
        steps[f"fit {name}"] = round(time.perf_counter() - started, 3)
    if progress:
        progress("fitting recommenders", 1.0)
    return fitted, selection


def load_recommender(info: BuildInfo, name: str | None = None) -> Recommender:
    """A fitted recommender of a build: ``name``, or the build's default."""
    selection = info.manifest.get("recommenders") or {}
    if not selection:
        raise TailorError(f"build {info.build_id} has no recommenders; run `tailor build`")
    name = name or selection["default"]
    path = info.path / "recommenders" / f"{name}.pkl"
    if not path.exists():
        known = sorted(p.stem for p in (info.path / "recommenders").glob("*.pkl"))
        raise TailorError(f"build {info.build_id} has no recommender {name!r}; it has {known}")
    return Recommender.load(path, load_dataset(info))


def load_dataset(info: BuildInfo) -> Dataset:
    """The Dataset a build was fitted on."""
    path = info.path / "dataset.pkl"
    if not path.exists():
        raise TailorError(f"build {info.build_id} holds no dataset; run `tailor build`")
    return pickle.loads(read_build_file(path))


def save_dataset(dataset: Dataset, path: Path) -> None:
    """Write the Dataset a build is fitted on (``dataset.pkl``; see :func:`load_dataset`)."""
    with writing(path) as f:
        pickle.dump(dataset, f, protocol=pickle.HIGHEST_PROTOCOL)


def save_dataset_arrays(dataset: Dataset, folder: Path) -> None:
    """Write a dataset's interaction matrix and id maps into a build folder (see
    :func:`load_dataset_arrays`)."""
    with writing(folder / "interactions.npz") as f:
        sp.save_npz(f, dataset.interactions)
    for name, ids in (("customer_ids", dataset.customer_ids), ("item_ids", dataset.item_ids)):
        with writing(folder / f"{name}.npy") as f:
            np.save(f, ids, allow_pickle=True)


def save_rules(rules: pd.DataFrame, path: Path) -> None:
    """Write association rules as Parquet (itemsets as lists of ids)."""
    frame = rules.copy()
    for column in ("antecedents", "consequents"):
        frame[column] = frame[column].map(list)
    with writing(path) as f:
        frame.to_parquet(f, index=False)


def load_rules(info: BuildInfo) -> pd.DataFrame:
    """The association rules of a build, as :func:`tailor.recommend.rules.association_rules`
    returns them (itemsets as tuples; ``attrs`` baskets and min_support from the manifest)."""
    summary = info.manifest.get("rules")
    path = info.path / "rules.parquet"
    if not summary or not path.exists():
        raise TailorError(f"build {info.build_id} has no association rules; run `tailor build`")
    rules = pd.read_parquet(reading(path))
    for column in ("antecedents", "consequents"):
        rules[column] = [tuple(ids.tolist()) for ids in rules[column]]
    rules.attrs.update(baskets=summary["baskets"], min_support=summary["min_support"])
    return rules


def load_dataset_arrays(info: BuildInfo) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(interactions, customer_ids, item_ids) of a build."""
    return (
        sp.load_npz(reading(info.path / "interactions.npz")).tocsr(),
        np.load(reading(info.path / "customer_ids.npy"), allow_pickle=True),
        np.load(reading(info.path / "item_ids.npy"), allow_pickle=True),
    )
