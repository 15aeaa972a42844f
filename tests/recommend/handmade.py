"""The hand-made shops of the recommender tests, with their answers worked out by hand."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

# The catalogue of the hand-made shops: F is never bought.
ITEMS = pd.DataFrame(
    {
        "item_id": ["A", "B", "C", "D", "E", "F"],
        "title": ["Milk", "Butter", "Bread", "Bagels", "Cat food", "Dog food"],
        "department": ["DAIRY", "DAIRY", "BAKERY", "BAKERY", "PET", "PET"],
    }
)

# The shop most tests share, seen as of 2024-03-31: the dataset's "now" is 2024-04-01 00:00, so
# a purchase on 03-30 is 2 days old, and the 28-day popularity window opens on 03-04 00:00.
SHOP_AS_OF = "2024-03-31"
SHOP = [
    # customer 1: A on three days (twice on 03-30), B once
    (1, "A", "2024-03-10 09:00"),
    (1, "A", "2024-03-20 09:00"),
    (1, "A", "2024-03-30 10:00"),
    (1, "A", "2024-03-30 18:00"),
    (1, "B", "2024-03-29 12:00"),
    # customer 2: A once, C on two days
    (2, "A", "2024-03-25 12:00"),
    (2, "C", "2024-03-15 12:00"),
    (2, "C", "2024-03-25 12:00"),
    # customer 3: E five times -- one buyer of E, however often
    (3, "E", "2024-03-21 12:00"),
    (3, "E", "2024-03-22 12:00"),
    (3, "E", "2024-03-23 12:00"),
    (3, "E", "2024-03-24 12:00"),
    (3, "E", "2024-03-25 12:00"),
    # customer 4: only long before the window
    (4, "C", "2024-01-10 12:00"),
    (4, "D", "2024-01-10 12:00"),
    # customer 5: A, and B the day before the cut
    (5, "A", "2024-03-26 12:00"),
    (5, "B", "2024-03-31 12:00"),
]
# Distinct buyers in the window (03-04 to the cut) and in all:
#   A {1, 2, 5} = 3 | 3    B {1, 5} = 2 | 2    C {2} = 1 | {2, 4} = 2
#   D 0 | {4} = 1          E {3} = 1 | 1       F 0 | 0
# Popularity = window buyers + all-time buyers / (max all-time + 1 = 4):
SHOP_POPULARITY = {"A": 3.75, "B": 2.5, "C": 1.5, "D": 0.25, "E": 1.25, "F": 0.0}
SHOP_POPULAR_ORDER = ["A", "B", "C", "E", "D", "F"]  # C beats E on C's old buyer, 4


def events_frame(rows: Sequence[tuple]) -> pd.DataFrame:
    """Events from (customer, item, timestamp[, event_type[, quantity]]) tuples; purchases of one
    unit by default."""
    full = [tuple(row) + ("purchase", 1)[len(row) - 3 :] for row in rows]
    return pd.DataFrame(
        full, columns=["customer_id", "item_id", "timestamp", "event_type", "quantity"]
    )
