"""API keys: created once, stored hashed, checked in constant time; roles read < write < admin.

A key is a random ``secrets.token_urlsafe`` string prefixed with its id (``tk_<id>_<secret>``);
the warehouse table ``api_keys`` keeps only its SHA-256, so a copy of the warehouse gives no
working key. ``create_key`` is the only way to make one (``tailor keys create`` or
``POST /v1/admin/keys``): the key is shown once and cannot be recovered, only revoked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from tailor.errors import TailorError
from tailor.store.warehouse import Warehouse

ROLES = ("read", "write", "admin")
"""Each role may do what the roles before it may."""

CREATE_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS api_keys (key_id VARCHAR PRIMARY KEY, key_hash VARCHAR NOT NULL, "
    "role VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, revoked BOOLEAN NOT NULL DEFAULT false)"
)


def rank(role: str) -> int:
    return ROLES.index(role)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def ensure_table(wh: Warehouse) -> None:
    """Create ``api_keys`` if the warehouse has none (it lives beside the schema's tables)."""
    wh.con.execute(CREATE_TABLE_SQL)


def create_key(wh: Warehouse, role: str) -> str:
    """Store a new key of ``role`` (hashed) and return it: the only time it is seen."""
    if role not in ROLES:
        raise TailorError(f"role {role!r}: use one of {', '.join(ROLES)}")
    ensure_table(wh)
    key_id = secrets.token_hex(4)
    key = f"tk_{key_id}_{secrets.token_urlsafe(32)}"
    wh.con.execute(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, false)",
        [key_id, key_hash(key), role, datetime.now(UTC).replace(tzinfo=None)],
    )
    return key


def revoke_key(wh: Warehouse, key_id: str) -> bool:
    """Mark a key revoked; False when there is no such key."""
    ensure_table(wh)
    found = wh.con.execute(
        "UPDATE api_keys SET revoked = true WHERE key_id = ? RETURNING key_id", [key_id]
    ).fetchall()
    return bool(found)


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    key_hash: str
    role: str


class KeyRing:
    """The unrevoked keys of a warehouse, held in memory by the server (which holds the
    warehouse's write lock, so nobody else can change them behind its back)."""

    def __init__(self) -> None:
        self._keys: tuple[StoredKey, ...] = ()
        self._lock = threading.Lock()

    def load(self, wh: Warehouse) -> None:
        ensure_table(wh)
        rows = wh.con.execute(
            "SELECT key_id, key_hash, role FROM api_keys WHERE NOT revoked"
        ).fetchall()
        with self._lock:
            self._keys = tuple(StoredKey(*row) for row in rows)

    def role(self, key: str) -> str | None:
        """The role of ``key``, None when no unrevoked key matches. Every stored hash is
        compared, in constant time, whichever matches."""
        presented = key_hash(key)
        found = None
        for stored in self._keys:
            if hmac.compare_digest(stored.key_hash, presented):
                found = stored.role
        return found
