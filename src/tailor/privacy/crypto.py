"""Build files at rest: every file of a published build goes through :func:`write_build_file`
and :func:`read_build_file` (or :func:`writing` / :func:`reading`, which give file objects).

With an encryption key configured (see :mod:`tailor.privacy.keys`), a file is written as::

    MAGIC | nonce (12 random bytes) | AES-256-GCM ciphertext | tag (16 bytes)

under a key derived from the secret with HKDF (purpose "build files"). The associated data is
the file's path inside its build (``recommenders/ease.pkl``), so a file moved to another place
in a build, or swapped with another, fails to decrypt, as does any changed byte. Without a key,
files are written as they are.

Reading follows the file, not the settings alone: an encrypted file needs the key; a plain file
is refused while a key is configured, because a build file may be a pickle, and an unsigned
pickle put in the builds folder would run code when loaded.
"""

from __future__ import annotations

import io
import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tailor.errors import EncryptionError, WarehouseError
from tailor.privacy.keys import ENCRYPTION, Secret, encryption_secret, how_to_set

MAGIC = b"TAILOR-AESGCM-1\n"
"""The first bytes of an encrypted build file."""
NONCE_BYTES = 12
TAG_BYTES = 16
PURPOSE = "build files"
# GCM in pieces: one call of cryptography's one-shot AESGCM takes at most 2 GiB, and pieces
# keep a single copy of a large model in memory.
CHUNK_BYTES = 64 * 2**20

# A build's folder: its id (``tailor.build.build`` names builds 20240630T120000123456Z), or the
# staging folder it is written in (``.20240630T120000123456Z.partial``).
_BUILD_FOLDER = re.compile(r"\.?\d{8}T\d{12}Z(\.[a-z]+)?")


def build_file_name(path: str | Path) -> str:
    """The name a build file is encrypted under: its path inside the build (POSIX), or its file
    name when it lies in no build folder."""
    path = Path(os.path.abspath(path))
    for n, parent in enumerate(path.parents):
        if _BUILD_FOLDER.fullmatch(parent.name):
            return PurePosixPath(*path.parts[len(path.parts) - n - 1 :]).as_posix()
    return path.name


def encrypt(secret: Secret, data: bytes | memoryview, name: str) -> Iterator[bytes]:
    """The pieces of ``data`` encrypted under ``secret`` and bound to ``name`` (see
    :func:`build_file_name`), header first, tag last: write them one after the other."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    encryptor = Cipher(algorithms.AES(secret.derive(PURPOSE)), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(MAGIC + name.encode("utf-8"))
    yield MAGIC + nonce
    view = memoryview(data)
    for start in range(0, len(view), CHUNK_BYTES):
        yield encryptor.update(view[start : start + CHUNK_BYTES])
    yield encryptor.finalize() + encryptor.tag


def decrypt(secret: Secret, blob: bytes, name: str, where: str) -> bytearray:
    """The plaintext of what :func:`encrypt` wrote; an :class:`EncryptionError` naming
    ``where`` when the key is another or a byte or the name changed."""
    view = memoryview(blob)
    nonce = view[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    body, tag = view[len(MAGIC) + NONCE_BYTES : -TAG_BYTES], view[-TAG_BYTES:]
    try:
        mode = modes.GCM(bytes(nonce), bytes(tag))
        decryptor = Cipher(algorithms.AES(secret.derive(PURPOSE)), mode).decryptor()
        decryptor.authenticate_additional_data(MAGIC + name.encode("utf-8"))
        # Decrypted in place into one buffer (GCM may hold back up to a block per call).
        plain = bytearray(len(body) + 15)
        out, size = memoryview(plain), 0
        for start in range(0, len(body), CHUNK_BYTES):
            size += decryptor.update_into(body[start : start + CHUNK_BYTES], out[size:])
        out.release()
        decryptor.finalize()  # checks the tag: nothing is returned unless it holds
        del plain[size:]
    except (InvalidTag, ValueError):
        raise EncryptionError(
            f"{where}: cannot be decrypted with the key of {secret.source}: it was encrypted "
            "with another key, or the file was changed or moved"
        ) from None
    return plain


def is_encrypted(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def write_build_file(path: str | Path, data: bytes | memoryview) -> None:
    """Write a build file, encrypted when a key is configured; atomically (a reader sees the old
    file or the new one)."""
    _write(Path(path), data, encryption_secret())


def _write(path: Path, data: bytes | memoryview, secret: Secret | None) -> None:
    pieces = [data] if secret is None else encrypt(secret, data, build_file_name(path))
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as f:
            for piece in pieces:
                f.write(piece)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def read_build_file(path: str | Path) -> bytes | bytearray:
    """The contents of a build file written by :func:`write_build_file`, decrypted.

    Raises
    ------
    EncryptionError
        The file is encrypted and no key is configured, or another key; it was changed or
        moved; or it is not encrypted while a key is configured.
    """
    path = Path(path)
    blob = path.read_bytes()
    secret = encryption_secret()
    if not is_encrypted(blob):
        if secret is not None:
            raise EncryptionError(
                f"{path}: not encrypted, but an encryption key is set ({secret.source}); "
                "a build made without the key is not read with one: run `tailor build`"
            )
        return blob
    if secret is None:
        raise EncryptionError(f"{path}: the build is encrypted; {how_to_set(ENCRYPTION)}")
    return decrypt(secret, blob, build_file_name(path), str(path))


@contextmanager
def writing(path: str | Path) -> Iterator[BinaryIO]:
    """A file object to write a build file through: written (see :func:`write_build_file`)
    when the block ends without an error."""
    buffer = io.BytesIO()
    yield buffer
    write_build_file(path, buffer.getbuffer())


def reading(path: str | Path) -> BinaryIO:
    """A file object over a build file's decrypted contents (see :func:`read_build_file`)."""
    return io.BytesIO(read_build_file(path))


def encrypt_existing(db: Path, secret: Secret, memory_limit: str | None = None) -> dict:
    """Encrypt a plain warehouse, and the files of its builds, with ``secret``.

    The warehouse is copied (``COPY FROM DATABASE``) into a new encrypted file that then
    replaces it; the builds' files are encrypted in place, each atomically. Returns what was
    done: {"warehouse": path, "build_files": how many were encrypted}.
    """
    from tailor.build import builds_dir
    from tailor.store.warehouse import Warehouse

    try:
        # Held for writing while copied: nothing changes it meanwhile.
        wh = Warehouse(db, create=False, memory_limit=memory_limit)
    except WarehouseError:
        # Encrypted already? Else the keyed open says what is wrong (another key, a lock).
        Warehouse(db, create=False, read_only=True, encryption_key=secret.text).close()
        raise EncryptionError(f"{db}: the warehouse is encrypted already") from None
    fresh = db.with_name(db.name + ".encrypting")
    fresh.unlink(missing_ok=True)
    try:
        with wh:
            wh.copy_to(fresh, secret.text)
        os.replace(fresh, db)
    finally:
        fresh.unlink(missing_ok=True)
    encrypted = 0
    builds = builds_dir(db)
    files = sorted(builds.rglob("*")) if builds.is_dir() else []
    for path in files:
        inside = path.relative_to(builds).parts
        # CURRENT names a build (no data); dot names are files and builds being written.
        if path.is_dir() or len(inside) < 2 or any(p.startswith(".") for p in inside):
            continue
        blob = path.read_bytes()
        if not is_encrypted(blob):
            _write(path, blob, secret)
            encrypted += 1
    return {"warehouse": str(db), "build_files": encrypted}
