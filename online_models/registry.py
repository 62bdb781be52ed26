"""Registry metadata: model identities, versions and a deterministic size of model state.

How versions reach ClickHouse is the wiring's business (`dataflows`); this module only
says what a model and a version are.
"""

from __future__ import annotations

import io
import json
import pickle
import random
from dataclasses import dataclass
from typing import Any

from risk.domain.enums import ModelScope
from risk.domain.ids import stable_id
from risk.domain.model import ModelVersion


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """One named model: the factory that builds it, its parameters, how often it runs.

    `sample_every` > 1 gives the model only every n-th warm tick (for models too slow
    per tick); labels still resolve on every tick. A `POOLED` model is one estimator
    that learns from every instrument's labels (see `ModelSet`).
    """

    name: str
    factory: str
    params: dict[str, float]
    sample_every: int = 1
    scope: ModelScope = ModelScope.PER_INSTRUMENT

    def params_json(self) -> str:
        """Factory and parameters as canonical JSON (sorted keys).

        >>> ModelConfig(name="m", factory="linear", params={"b": 1.0, "a": 2.0}).params_json()
        '{"factory": "linear", "params": {"a": 2.0, "b": 1.0}}'
        """
        return json.dumps({"factory": self.factory, "params": self.params}, sort_keys=True)

    def params_hash(self) -> str:
        """A stable 32-hex digest of factory and parameters (not of the name).

        >>> a = ModelConfig(name="a", factory="linear", params={"learning_rate": 0.1})
        >>> b = ModelConfig(name="b", factory="linear", params={"learning_rate": 0.1})
        >>> a.params_hash() == b.params_hash()
        True
        """
        return stable_id("params", self.params_json())


def new_version(
    config: ModelConfig,
    *,
    instrument: str,
    code_version: str,
    parent: str,
    created_at: int,
) -> ModelVersion:
    """The version record of a model created on `instrument` at event time `created_at`.

    >>> cfg = ModelConfig(name="m", factory="logistic", params={})
    >>> v = new_version(cfg, instrument="X", code_version="abc", parent="", created_at=5)
    >>> (v.model, v.factory, v.parent, v.created_at, len(v.version_id))
    ('m', 'logistic', '', 5, 32)
    """
    params_hash = config.params_hash()
    return ModelVersion(
        version_id=stable_id(
            "version", instrument, config.name, params_hash, code_version, parent, created_at
        ),
        instrument=instrument,
        model=config.name,
        factory=config.factory,
        params=config.params_json(),
        params_hash=params_hash,
        code_version=code_version,
        parent=parent,
        created_at=created_at,
        ts_init=created_at,
    )


# A Mersenne Twister state: 625 32-bit words plus the Gauss cache.
_RANDOM_STATE_PLACEHOLDER = bytes(2_500)


class _SizePickler(pickle.Pickler):
    """Pickles without memo and writes every `random.Random` as a fixed-size placeholder."""

    def reducer_override(self, obj: Any) -> Any:
        # Some River components hold an unseeded `random.Random` they never draw from
        # at our sizes; its state (and so its pickled size) differs per process.
        if isinstance(obj, random.Random):
            return bytes, (_RANDOM_STATE_PLACEHOLDER,)
        return NotImplemented


def state_size_bytes(state: Any) -> int:
    """Size of `state` pickled without memoisation: a deterministic measure of model memory.

    River's `_raw_memory_usage` (recursive `sys.getsizeof`) changes with dict capacities
    after a restore, and a memoised pickle with how objects happen to be shared; both
    would break byte-identical replays. Without the memo every value is written out in
    full, so equal states have equal sizes; random generators count as a constant
    (their state's size), since an unseeded one differs per process. The result is
    close to River's estimate.

    >>> state_size_bytes({"w": [1.0, 2.0]}) == state_size_bytes({"w": [1.0, 2.0]})
    True
    >>> state_size_bytes(random.Random(1)) == state_size_bytes(random.Random(2))
    True
    """
    buffer = io.BytesIO()
    pickler = _SizePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: identity sharing does not change the size
    pickler.dump(state)
    return buffer.tell()
