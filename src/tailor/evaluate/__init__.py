"""The evaluation lab: how good are the recommendations, measured on held-out data.

``metrics`` scores recommendation lists (ranking metrics @k per user, coverage, diversity,
novelty, repeat/explore recall, bootstrap confidence intervals); it takes plain arrays and sparse
matrices, never a model.
"""

from tailor.evaluate.metrics import (
    RANKING_METRICS,
    bootstrap_ci,
    catalog_coverage,
    intra_list_diversity,
    item_popularity,
    novelty,
    ranking_metrics,
    split_recall,
    summarize,
)

__all__ = [
    "RANKING_METRICS",
    "bootstrap_ci",
    "catalog_coverage",
    "intra_list_diversity",
    "item_popularity",
    "novelty",
    "ranking_metrics",
    "split_recall",
    "summarize",
]
