"""Recommenders: one interface (:class:`Recommender`), one module per family.

:data:`REGISTRY` names every recommender a build fits and evaluation compares; the build picks
its default by a validation split carved from the training data, never by hand.
"""

from collections.abc import Callable

from tailor.errors import TailorError
from tailor.recommend.base import RECOMMEND_COLUMNS, Recommender
from tailor.recommend.content import ContentBased
from tailor.recommend.ease import EASE
from tailor.recommend.hybrid import Hybrid
from tailor.recommend.knn import ItemKNN
from tailor.recommend.mf import ALS, BPR
from tailor.recommend.popularity import Popularity
from tailor.recommend.repurchase import PersonalFrequency, Repurchase
from tailor.recommend.segment import SegmentPopularity
from tailor.recommend.trending import Trending
from tailor.recommend.user_knn import UserKNN

REGISTRY: dict[str, Callable[[], Recommender]] = {
    "popularity": Popularity,
    "trending": Trending,
    "segment_popularity": SegmentPopularity,
    "content": ContentBased,
    "personal_frequency": PersonalFrequency,
    "recency_frequency": lambda: PersonalFrequency(half_life_days=60.0),
    "repurchase": Repurchase,
    "item_knn": ItemKNN,
    "user_knn": UserKNN,
    "hybrid": Hybrid,
    "ease": EASE,
    "als": ALS,
    "bpr": BPR,
}


def factory(name: str) -> Callable[[], Recommender]:
    """A maker of the registered recommender ``name``, whose models carry that name."""
    if name not in REGISTRY:
        raise TailorError(f"unknown recommender {name!r}; known: {', '.join(REGISTRY)}")

    def make() -> Recommender:
        model = REGISTRY[name]()
        model.name = name
        return model

    return make


__all__ = [
    "ALS",
    "BPR",
    "ContentBased",
    "EASE",
    "REGISTRY",
    "RECOMMEND_COLUMNS",
    "Hybrid",
    "ItemKNN",
    "PersonalFrequency",
    "Popularity",
    "Recommender",
    "Repurchase",
    "SegmentPopularity",
    "Trending",
    "UserKNN",
    "factory",
]
