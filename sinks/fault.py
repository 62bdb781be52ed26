"""Injected ClickHouse faults for the chaos suite (R5): a failpoint around the client.

`clickhouse.faults` (`HFL_CLICKHOUSE__FAULTS`) set to, say,
``seed=5,before=0.1,after=0.1,delay=0.05,delay_s=0.3`` makes the persist flow's real
client fail some inserts before inserting (connection refused), fail some after the
rows went in (the acknowledgement is lost), and stall some, by a seeded draw per
insert. At most `max_in_row` attempts in a row fail, so the writer's bounded retry
always gets through and the run shows recovery rather than a crash loop. Empty (the
default) means no failpoint.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.exceptions import OperationalError

from risk.domain.error import ConfigError
from sinks.writer import Inserter

FAULTS = ("before", "after", "delay")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPlan:
    """Probabilities per insert of each fault, the stall length and the seed."""

    seed: int = 0
    before: float = 0.0
    after: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.05
    max_in_row: int = 2

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        """Read `name=value,…`.

        >>> FaultPlan.parse("seed=5,before=0.2,delay_s=0.3")
        FaultPlan(seed=5, before=0.2, after=0.0, delay=0.0, delay_s=0.3, max_in_row=2)
        """
        values: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, _, raw = part.partition("=")
            if name not in cls.__dataclass_fields__:
                raise ConfigError(f"clickhouse.faults: unknown fault setting {name!r}")
            values[name] = int(raw) if name in ("seed", "max_in_row") else float(raw)
        return cls(**values)


@dataclass(slots=True)
class FaultyInserter:
    """The real client behind seeded faults; `injected` counts each kind."""

    delegate: Inserter
    plan: FaultPlan
    injected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAULTS, 0))
    _rng: random.Random = field(init=False)
    _failed_in_row: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.plan.seed)

    def insert(self, table: str, data: Any, column_names: Any = None, **kwargs: Any) -> Any:
        fault = self._draw()
        if fault == "before":
            raise OperationalError("injected: connection refused")
        if fault == "delay":
            time.sleep(self.plan.delay_s)
        result = self.delegate.insert(table, data, column_names=column_names, **kwargs)
        if fault == "after":
            raise OperationalError("injected: acknowledgement lost")
        return result

    def _draw(self) -> str:
        plan, draw = self.plan, self._rng.random()
        fault = "none"
        if draw < plan.before:
            fault = "before"
        elif draw < plan.before + plan.after:
            fault = "after"
        elif draw < plan.before + plan.after + plan.delay:
            fault = "delay"
        failing = fault in ("before", "after")
        if failing and self._failed_in_row >= self.plan.max_in_row:
            fault = "none"
            failing = False
        self._failed_in_row = self._failed_in_row + 1 if failing else 0
        if fault != "none":
            self.injected[fault] += 1
            logger.warning("injected fault: %s", fault)
        return fault
