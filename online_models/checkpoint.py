"""Seal model state into a checkpoint blob with its sha256, and open it again, fail-closed.

A checkpoint is the pickled state, zlib-compressed; its sha256 is taken over the
compressed bytes and stored beside them. `unseal` recomputes the digest *before*
unpickling and refuses any blob whose digest differs, so a truncated, corrupted or
edited blob never reaches `pickle`.

Security: unpickling runs code chosen by whoever wrote the bytes. Checkpoints are
trusted input: load them only from our own store (the `model_checkpoints` table the
persist flow fills from our own trading flow), never from a file or a table someone
else can write. The digest detects corruption and tampering of a stored blob; it is
not a signature, so whoever can rewrite both blob and digest can still inject code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import pickle
import random
import zlib
from dataclasses import dataclass
from typing import Any

from river.proba.base import Distribution

from risk.domain.error import HflError

COMPRESS_LEVEL = 6  # zlib's default trade-off; checkpoints are rare, size matters more


# Stands in for the unseeded generators of River's distributions in a checkpoint.
_UNDRAWN_RNG = random.Random(0)


class _CheckpointPickler(pickle._Pickler):
    """Pickles a state to bytes that depend on its values only, not on object identity.

    - Equal strings are written once: a pickle memoises by identity, and a model
      restored from a checkpoint holds unpickled copies of strings (feature names)
      where the model that kept running holds the interned originals, so equal
      states would pickle to different bytes.
    - River distributions without a seed get one fixed generator: a Hoeffding
      tree's Gaussian splitters each hold a `random.Random` seeded from the OS,
      which River lets nobody seed and the tree never draws from (only
      `Distribution.sample` would).

    Equal model states thus give equal checkpoints and digests in every process,
    after a restore too, so replays and recovered runs write identical rows. The
    Python pickler is slower than the C one; checkpoints are rare.
    """

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._strings: dict[str, str] = {}

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if type(obj) is str:
            obj = self._strings.setdefault(obj, obj)
        super().save(obj, save_persistent_id)  # type: ignore[misc]

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Distribution) and obj.seed is None:
            reduced: tuple[Any, ...] = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)  # type: ignore[assignment]
            constructor, args, state, *rest = reduced
            return (constructor, args, {**state, "_rng": _UNDRAWN_RNG}, *rest)
        return NotImplemented


def _dumps(state: Any) -> bytes:
    buffer = io.BytesIO()
    _CheckpointPickler(buffer).dump(state)
    return buffer.getvalue()


class CheckpointError(HflError):
    """A checkpoint cannot be loaded: its digest does not match, or it is not what it claims."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sealed:
    """A sealed state: the compressed pickle as base64 text, its digest and its size."""

    blob: str
    sha256: str
    size_bytes: int


def seal(state: Any) -> Sealed:
    """Pickle, compress and digest `state`.

    >>> sealed = seal({"w": [1.0, 2.0]})
    >>> len(sealed.sha256), unseal(sealed.blob, sealed.sha256)
    (64, {'w': [1.0, 2.0]})
    """
    raw = zlib.compress(_dumps(state), COMPRESS_LEVEL)
    return Sealed(
        blob=base64.b64encode(raw).decode("ascii"),
        sha256=hashlib.sha256(raw).hexdigest(),
        size_bytes=len(raw),
    )


def unseal(blob: str, sha256: str) -> Any:
    """Return the state sealed in `blob` after checking its digest against `sha256`.

    Raises:
        CheckpointError: the blob is not base64, its digest is not `sha256`, or it
            does not decompress; nothing is unpickled then.

    >>> sealed = seal([1, 2])
    >>> unseal(sealed.blob, "0" * 64)
    Traceback (most recent call last):
    ...
    online_models.checkpoint.CheckpointError: checkpoint digest mismatch: ...
    """
    try:
        raw = base64.b64decode(blob, validate=True)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint blob is not base64: {exc}") from exc
    actual = hashlib.sha256(raw).hexdigest()
    if not hmac.compare_digest(actual, sha256):
        msg = (
            f"checkpoint digest mismatch: stored {sha256[:16]}..., blob hashes to"
            f" {actual[:16]}...; refusing to unpickle a corrupted or altered checkpoint"
        )
        raise CheckpointError(msg)
    try:
        payload = zlib.decompress(raw)
    except zlib.error as exc:
        raise CheckpointError(f"checkpoint blob does not decompress: {exc}") from exc
    return pickle.loads(payload)
