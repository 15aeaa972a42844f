"""Fit what exists and publish it as one build, atomically.

A build is a folder ``<builds>/<build id>/`` with ``manifest.json`` and the artifacts the CLI,
the Python API and (later) the HTTP API and dashboard read. It is written under a temporary name
and renamed into place, then the ``CURRENT`` pointer is replaced atomically: a reader sees the
old build or the new one, never half of one, and a failed build never replaces a good one.

Today a build holds the Dataset's id maps and interaction matrix and its summary; recommenders,
customer intelligence and reports add their artifacts here as they arrive.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from tailor import __version__
from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.store.warehouse import Warehouse

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
) -> BuildInfo:
    """Build the dataset (and, as they exist, every model) and publish it as the current build.

    ``weights`` are the interaction weights per event type (``[dataset.weights]`` of
    tailor.toml), over the defaults of :data:`tailor.dataset.DEFAULT_WEIGHTS`.
    """
    start = time.perf_counter()
    dataset = Dataset.from_warehouse(wh, as_of=as_of, weights=weights)
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    directory.mkdir(parents=True, exist_ok=True)
    staging = directory / f".{build_id}.partial"
    try:
        staging.mkdir()
        sp.save_npz(staging / "interactions.npz", dataset.interactions)
        np.save(staging / "customer_ids.npy", dataset.customer_ids, allow_pickle=True)
        np.save(staging / "item_ids.npy", dataset.item_ids, allow_pickle=True)
        manifest = {
            "build_id": build_id,
            "created_at": datetime.now(UTC).isoformat(),
            "tailor_version": __version__,
            "warehouse": str(wh.path.resolve()),
            "dataset": dataset.summary(),
            "weights": dict(dataset.weights),
            "steps": {"dataset": round(time.perf_counter() - start, 3)},
        }
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
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
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise TailorError(
            f"{directory}: the current build {build_id!r} cannot be read ({exc}); "
            "run `tailor build`"
        ) from None
    return BuildInfo(build_id, path, manifest)


def load_dataset_arrays(info: BuildInfo) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(interactions, customer_ids, item_ids) of a build."""
    return (
        sp.load_npz(info.path / "interactions.npz").tocsr(),
        np.load(info.path / "customer_ids.npy", allow_pickle=True),
        np.load(info.path / "item_ids.npy", allow_pickle=True),
    )
