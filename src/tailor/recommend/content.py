"""Content-based: items like the ones a customer buys, by what the catalogue says of them.

Each item is a sparse vector: one-hot of its attributes (department, category, subcategory,
brand, where the catalogue has them) and TF-IDF of its text (title, description), both from
scikit-learn, each block L2-normalised and weighted, the whole row normalised again. A customer's
profile is the weighted mean of the vectors of what they bought (the interaction weights); an
item's score is the cosine of its vector to the profile. An item nobody has bought yet scores
like any other: this is how new items are reached before anyone buys them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import OneHotEncoder, normalize

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend.base import Recommender, describe_items

ATTRIBUTES = ("department", "category", "subcategory", "brand")
TEXT = ("title", "description")
_WORDS = {"department": "department", "category": "category", "subcategory": "type",
          "brand": "brand"}  # fmt: skip


class ContentBased(Recommender):
    """Cosine of each item's attribute/text vector to the customer's profile.

    Parameters
    ----------
    attributes : tuple of str
        Categorical item attributes one-hot encoded (those the catalogue lacks are skipped).
    text : tuple of str
        Text attributes, TF-IDF encoded (unigrams and bigrams).
    text_weight : float
        Weight of the text block against the attribute block (both L2-normalised first).
    max_features : int
        Largest TF-IDF vocabulary.
    popularity_weight : float
        Weight of log recent popularity (scaled to [0, 1]) added to the cosine (in [0, 1]).
    """

    name = "content"
    customer_state = ("profiles_",)

    def __init__(
        self,
        attributes: tuple[str, ...] = ATTRIBUTES,
        text: tuple[str, ...] = TEXT,
        text_weight: float = 1.0,
        max_features: int = 20_000,
        popularity_weight: float = 0.3,
    ) -> None:
        self.attributes = attributes
        self.text = text
        self.text_weight = text_weight
        self.max_features = max_features
        self.popularity_weight = popularity_weight

    def _fit(self, dataset: Dataset) -> None:
        items = dataset.items
        self.used_attributes_ = [
            a for a in self.attributes if a in items.columns and items[a].notna().any()
        ]
        # Integer codes of each attribute (-1 where missing), for the "same brand" of reasons.
        self.attribute_codes_ = (
            np.column_stack([pd.factorize(items[a])[0] for a in self.used_attributes_])
            if self.used_attributes_
            else np.empty((len(items), 0), dtype=np.int64)
        )
        blocks = []
        if self.used_attributes_:
            values = items[self.used_attributes_].astype(object)
            values = values.where(values.notna(), None).astype(str)
            onehot = OneHotEncoder(handle_unknown="ignore", dtype=np.float32).fit_transform(values)
            blocks.append(normalize(onehot))
        texts = [t for t in self.text if t in items.columns and items[t].notna().any()]
        if texts:
            docs = items[texts].fillna("").astype(str).agg(" ".join, axis=1)
            tfidf = TfidfVectorizer(
                max_features=self.max_features, ngram_range=(1, 2), dtype=np.float32
            ).fit_transform(docs)
            blocks.append(normalize(tfidf) * self.text_weight)
        if not blocks:
            raise TailorError(
                "content: the catalogue has none of the attributes "
                f"{', '.join((*self.attributes, *self.text))}"
            )
        self.item_vectors_ = normalize(sp.hstack(blocks, format="csr")).astype(np.float32)
        weights = dataset.interactions.maximum(0)
        self.profiles_ = normalize(weights @ self.item_vectors_).tocsr().astype(np.float32)

    def _forget(self, dataset: Dataset, keep: np.ndarray) -> None:
        pass  # the item vectors are the catalogue's; a profile is one customer's

    def _score(self, rows: np.ndarray) -> np.ndarray:
        # items x features (sparse) @ features x customers (dense): never customers x items sparse.
        profiles = self.profiles_[rows].toarray().T
        scores = np.asarray(self.item_vectors_ @ profiles, dtype=np.float32).T
        # A catalogue says little in grocery (thousands of items share "GROCERY / SOFT DRINKS"):
        # log recent popularity, scaled to [0, 1], orders items of equal content.
        prior = np.log1p(self.cold_start_) / max(float(np.log1p(self.cold_start_.max())), 1.0)
        return scores + self.popularity_weight * prior[None, :]

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """ "similar to Yoplait Yogurt you bought (same category and brand)"."""
        reasons = np.full(items.shape, "matches what you usually buy", dtype=object)
        codes = self.attribute_codes_
        for n, row in enumerate(rows):  # formatting, and one small product per customer
            bought = self.history_[row].indices
            valid = items[n] >= 0
            if len(bought) == 0 or not valid.any():
                continue
            candidates = items[n][valid]
            sims = (self.item_vectors_[candidates] @ self.item_vectors_[bought].T).toarray()
            sims[candidates[:, None] == bought[None, :]] = -1.0  # not "similar to itself"
            anchors = bought[sims.argmax(axis=1)]
            names = describe_items(self.dataset_, anchors)
            shared = (codes[candidates] == codes[anchors]) & (codes[candidates] >= 0)
            owned = np.isin(candidates, bought)
            texts = []
            for i, name in enumerate(names):
                if owned[i]:
                    texts.append("you bought this before; it matches what you usually buy")
                    continue
                same = [_WORDS.get(a, a) for a, s in zip(self.used_attributes_, shared[i],
                                                          strict=True) if s]  # fmt: skip
                detail = f" (same {' and '.join(same[-2:])})" if same else ""
                texts.append(f"similar to {name} you bought{detail}")
            reasons[n, valid] = texts
        return reasons

    def similar_content(self, items: list, k: int = 10) -> pd.DataFrame:
        """Items whose catalogue vectors are closest to each given item (cosine), whether or not
        anyone bought them: columns item_id, rank, similar_item_id, score."""
        self._check_fitted()
        ds = self.dataset_
        cols = ds.item_index(items)
        if (cols < 0).any():
            raise TailorError(f"unknown item {np.asarray(items)[cols < 0].tolist()[0]!r}")
        sims = (self.item_vectors_[cols] @ self.item_vectors_.T).toarray()
        sims[np.arange(len(cols)), cols] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return pd.DataFrame(
            {
                "item_id": np.repeat(ds.item_ids[cols], order.shape[1]),
                "rank": np.tile(np.arange(1, order.shape[1] + 1), len(cols)),
                "similar_item_id": ds.item_ids[order.ravel()],
                "score": np.take_along_axis(sims, order, axis=1).ravel(),
            }
        )
