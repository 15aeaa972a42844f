"""Pseudonymous customer ids: a retailer can run Tailor without raw ids ever entering it.

``tailor ingest ... --pseudonymize`` replaces every customer id with its **pseudonym**, the hex
HMAC-SHA256 of the id as text under the pseudonym key (see :mod:`tailor.privacy.keys`), before
anything is stored: in the events, customers, campaign members and redemptions alike, and in
the basket ids derived from them. The warehouse then records the key's fingerprint (an HMAC of
a fixed label: it tells keys apart and reveals nothing of the key) in ``tailor_meta``, and from
then on:

* every ingest into it is pseudonymized, with or without the option, and refused without the
  key or with another key (its fingerprint differs);
* every look-up of a customer id given by a user (the CLI's ``--customer`` and ``ID``
  arguments, the HTTP API's ``{customer_id}`` and ``customer_id`` fields) goes through
  :func:`lookup_id`, which turns it into the pseudonym;
* answers name customers by their pseudonyms (``tailor pseudonym ID`` prints one).

A warehouse that holds raw customer ids is never pseudonymized later: the two would mix.

The ingest hashes in SQL, once per distinct id (a customer has many events): DuckDB's
``sha256`` makes the HMAC from the key's two padded blocks, which a temporary macro of the
ingest's connection holds (never the warehouse).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from tailor.errors import PseudonymError
from tailor.privacy.keys import PSEUDONYM, Secret, how_to_set, pseudonym_secret
from tailor.store.schema import quote

if TYPE_CHECKING:
    from tailor.build import BuildInfo
    from tailor.store.warehouse import Warehouse

FINGERPRINT_META = "pseudonym_key_fingerprint"
"""The ``tailor_meta`` key (and build manifest key) of the pseudonym key's fingerprint; absent
where customer ids are raw."""
MACRO = "__tailor_pseudonym"
_LABEL = b"tailor pseudonym key fingerprint"
_BLOCK = 64  # SHA-256's block size, in bytes


def pseudonym(secret: Secret, customer_id: Any) -> str:
    """The pseudonym of one customer id: hex HMAC-SHA256 of the id as text, stripped (as the
    warehouse stores ids: 12 and "12 " are one id)."""
    text = str(customer_id).strip().encode("utf-8")
    return hmac.new(secret.value, text, hashlib.sha256).hexdigest()


def fingerprint(secret: Secret) -> str:
    """What a warehouse records of its pseudonym key."""
    return hmac.new(secret.value, _LABEL, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class CustomerIds:
    """How a warehouse or a build names its customers: by their ids (``fingerprint`` None) or
    by pseudonyms under the key of that fingerprint; ``secret`` is the key configured here."""

    fingerprint: str | None
    secret: Secret | None = field(default=None, repr=False)
    where: str = "the warehouse"

    @classmethod
    def of(cls, where: Warehouse | BuildInfo, secret: Secret | None = None) -> CustomerIds:
        """``where``'s naming, with ``secret`` (default: the configured pseudonym key, read
        only when ``where`` is pseudonymized)."""
        manifest = getattr(where, "manifest", None)
        if manifest is not None:  # a build
            found, name = manifest.get(FINGERPRINT_META), f"build {where.build_id}"
        else:
            found, name = where.get_meta(FINGERPRINT_META), str(where.path)
        if found is not None and secret is None:
            secret = pseudonym_secret()
        return cls(found, secret, name)

    @property
    def pseudonymized(self) -> bool:
        return self.fingerprint is not None

    def lookup(self, customer_id: Any) -> Any:
        """The id to look ``customer_id`` up by: its pseudonym where customers have pseudonyms,
        else the id unchanged."""
        if self.fingerprint is None:
            return customer_id
        return pseudonym(self._checked(), customer_id)

    def lookup_all(self, customer_ids: Iterable[Any]) -> list[Any]:
        return [self.lookup(c) for c in customer_ids]  # ids a user typed: a handful

    def _checked(self) -> Secret:
        if self.secret is None:
            raise PseudonymError(
                f"{self.where}: customer ids are pseudonymized; {how_to_set(PSEUDONYM)} to the "
                "key they were made with"
            )
        if fingerprint(self.secret) != self.fingerprint:
            raise PseudonymError(
                f"{self.where}: the pseudonym key of {self.secret.source} is not the one its "
                "customer ids were made with"
            )
        return self.secret


def lookup_id(where: Warehouse | BuildInfo, customer_id: Any, secret: Secret | None = None) -> Any:
    """The id to look a user's ``customer_id`` up by in ``where`` (a warehouse or a build): its
    pseudonym when ``where`` is pseudonymized (with ``secret``, default: the configured
    pseudonym key), else the id unchanged. The one door for ids from users."""
    return CustomerIds.of(where, secret).lookup(customer_id)


# -- ingest ----------------------------------------------------------------------------------


def ingest_secret(wh: Warehouse, pseudonymize: bool, secret: Secret | None) -> Secret | None:
    """The key an ingest into ``wh`` hashes customer ids with; None to store them as they are.

    A pseudonymized warehouse is always ingested into with its own key; ``pseudonymize`` asks
    for it on a warehouse that holds no customer id yet. ``secret`` defaults to the
    configured pseudonym key. Raises PseudonymError when that cannot be.
    """
    recorded = wh.get_meta(FINGERPRINT_META)
    if recorded is None and not pseudonymize:
        return None
    secret = secret or pseudonym_secret()
    if recorded is not None:
        return CustomerIds(recorded, secret, str(wh.path))._checked()
    if secret is None:
        raise PseudonymError(f"--pseudonymize needs a pseudonym key: {how_to_set(PSEUDONYM)}")
    if not wh.id_domain_empty("customer"):
        raise PseudonymError(
            f"{wh.path}: the warehouse holds raw customer ids already, which pseudonyms would "
            "meet; pseudonymize from the first ingest, into a new warehouse"
        )
    return secret


def mark_pseudonymized(wh: Warehouse, secret: Secret) -> None:
    """Record in the warehouse that its customer ids are pseudonyms under ``secret`` (inside the
    caller's transaction)."""
    wh.set_meta(FINGERPRINT_META, fingerprint(secret))
    if wh.id_type("customer") != "VARCHAR":
        wh.set_id_type("customer", "VARCHAR")  # pseudonyms are text


def create_macro(con: duckdb.DuckDBPyConnection, secret: Secret) -> None:
    """``__tailor_pseudonym(text)`` on ``con``: the pseudonym of a customer id, in SQL.

    HMAC(K, m) = H((K' xor opad) || H((K' xor ipad) || m)), K' the key padded to SHA-256's
    block (hashed first when longer). A temporary macro lives in the connection's memory only.
    """
    key = secret.value
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in key).hex()
    outer = bytes(b ^ 0x5C for b in key).hex()
    con.execute(
        f"CREATE OR REPLACE TEMP MACRO {MACRO}(id) AS sha256(unhex('{outer}') || "
        f"unhex(sha256(unhex('{inner}') || encode(CAST(id AS VARCHAR)))))"
    )


def drop_macro(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"DROP MACRO IF EXISTS {MACRO}")


def pseudonymized_sql(relation: str, column: str = "customer_id") -> str:
    """SQL of ``relation`` (a SELECT) with ``column`` replaced by its pseudonyms, each distinct
    id hashed once (see :func:`create_macro`)."""
    col = quote(column)
    distinct = f"SELECT DISTINCT {col} AS __id FROM __source"
    return (
        f"WITH __source AS MATERIALIZED ({relation}), "
        f"__pseudonyms AS (SELECT __id, {MACRO}(__id) AS __pseudonym FROM ({distinct})) "
        f"SELECT s.* REPLACE (p.__pseudonym AS {col}) FROM __source s "
        f"LEFT JOIN __pseudonyms p ON s.{col} = p.__id"
    )
