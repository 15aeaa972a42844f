"""Where Tailor finds its two secrets: the encryption key and the pseudonym key.

* The **encryption key** encrypts the warehouse (DuckDB's own AES-GCM) and every file of a
  published build (AES-GCM, see :mod:`tailor.privacy.crypto`).
* The **pseudonym key** turns customer ids into pseudonyms, HMAC-SHA256 (see
  :mod:`tailor.privacy.pseudonym`).

Each comes from, in this order: an environment variable holding it (``TAILOR_ENCRYPTION_KEY``,
``TAILOR_PSEUDONYM_KEY``), an environment variable naming a file that holds it
(``TAILOR_ENCRYPTION_KEY_FILE``, ``TAILOR_PSEUDONYM_KEY_FILE``), or ``tailor.toml``::

    [privacy]
    encryption_key_file = "tailor.key"     # relative to tailor.toml's folder
    pseudonym_key_file = "pseudonym.key"

Never from the command line, where a secret ends up in shell histories and process lists. A
secret is text of at least :data:`MIN_LENGTH` characters (a file's trailing newline is not part
of it); ``python -c "import secrets; print(secrets.token_urlsafe(32))"`` makes a good one.

Commands read the settings they were given (:func:`activate`, for ``--config``); library calls
without settings read the environment and ``./tailor.toml`` (or ``$TAILOR_CONFIG``).
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tailor.errors import ConfigError

if TYPE_CHECKING:  # config imports the store, whose ingest imports this module
    from tailor.config import Settings

MIN_LENGTH = 16
"""Characters a secret has at least."""

ENCRYPTION = "encryption"
PSEUDONYM = "pseudonym"
_ENV = {ENCRYPTION: "TAILOR_ENCRYPTION_KEY", PSEUDONYM: "TAILOR_PSEUDONYM_KEY"}
_SETTING = {ENCRYPTION: "encryption_key_file", PSEUDONYM: "pseudonym_key_file"}

_active: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "tailor_settings", default=None
)


@dataclass(frozen=True)
class Secret:
    """A configured secret and where it came from (for messages; the value is never shown)."""

    value: bytes = field(repr=False)
    source: str

    @property
    def text(self) -> str:
        return self.value.decode("utf-8")

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key of ``length`` bytes for one ``purpose`` (HKDF-SHA256 with the purpose as its
        info): keys for different uses of one secret are independent."""
        kdf = HKDF(hashes.SHA256(), length, salt=None, info=b"tailor " + purpose.encode())
        return kdf.derive(self.value)


def how_to_set(kind: str) -> str:
    """The ways to configure a secret, for error messages."""
    return f"set {_ENV[kind]} (or {_ENV[kind]}_FILE, or [privacy] {_SETTING[kind]} in tailor.toml)"


def encryption_secret(settings: Settings | None = None) -> Secret | None:
    """The encryption key configured by ``settings`` (default: :func:`active_settings`); None
    when none is."""
    return _secret(ENCRYPTION, settings)


def warehouse_key(settings: Settings | None = None) -> str | None:
    """The key DuckDB encrypts the warehouse with: the encryption secret as it is (so that
    DuckDB alone opens the file with it too); None when no key is configured."""
    secret = encryption_secret(settings)
    return None if secret is None else secret.text


def pseudonym_secret(settings: Settings | None = None) -> Secret | None:
    """The pseudonym key configured by ``settings`` (default: :func:`active_settings`); None
    when none is."""
    return _secret(PSEUDONYM, settings)


def activate(settings: Settings) -> None:
    """Make ``settings`` the ones library calls without settings read, in the current context
    (a command's: see ``tailor.cli.user_errors``)."""
    _active.set(settings)


@contextmanager
def use_settings(settings: Settings) -> Iterator[None]:
    """:func:`activate` for a block (a thread of its own starts with none active)."""
    token = _active.set(settings)
    try:
        yield
    finally:
        _active.reset(token)


def active_settings() -> Settings:
    """The settings of the running command, else those of the environment and tailor.toml."""
    from tailor.config import load_settings

    return _active.get() or load_settings()


def _secret(kind: str, settings: Settings | None) -> Secret | None:
    env = _ENV[kind]
    value, file = os.environ.get(env), os.environ.get(env + "_FILE")
    if value is not None and file is not None:
        raise ConfigError(f"set ${env} or ${env}_FILE, not both")
    if value is not None:
        return _checked(value.encode("utf-8"), f"${env}")
    if file is not None:
        return _read(Path(file).expanduser(), f"${env}_FILE")
    if settings is None:
        settings = active_settings()
    named = getattr(settings.privacy, _SETTING[kind])
    if named is None:
        return None
    return _read(named, f"[privacy] {_SETTING[kind]} of {settings.source}")


def _read(path: Path, where: str) -> Secret:
    try:
        value = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the key file {path}: {exc.strerror}") from None
    return _checked(value.rstrip(b"\r\n"), f"key file {path} (from {where})")


def _checked(value: bytes, source: str) -> Secret:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{source}: the key must be text (UTF-8)") from None
    if len(text.strip()) < MIN_LENGTH or "\0" in text:
        raise ConfigError(
            f"{source}: the key must be at least {MIN_LENGTH} characters of text; make one with "
            'python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return Secret(value, source)
