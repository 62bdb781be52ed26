"""Each input of a flow polls the broker at the fetch wait its place on the latency path asks."""

from __future__ import annotations

from dataclasses import replace

from bytewax.dataflow import Dataflow, Stream
from conftest import BATCH_SIZE, ListIO

from connectors.kafka.record import KafkaRecord
from connectors.kafka.source import EndHooks
from dataflows.flows import trading
from dataflows.settings import Settings


class WaitsIO(ListIO):
    """`ListIO` that notes the fetch wait each input asked for (None: `kafka.fetch_wait_ms`)."""

    def __init__(self) -> None:
        super().__init__({}, [], BATCH_SIZE)
        self.waits: dict[str, int | None] = {}

    def input(
        self,
        step_id: str,
        flow: Dataflow,
        *topics: str,
        fetch_wait_ms: int | None = None,
        end: EndHooks | None = None,
        await_ends: bool = True,
    ) -> Stream[KafkaRecord]:
        self.waits[step_id] = fetch_wait_ms
        return super().input(
            step_id, flow, *topics, fetch_wait_ms=fetch_wait_ms, end=end, await_ends=await_ends
        )


def test_the_trading_flow_reads_model_commands_at_the_control_wait(settings: Settings) -> None:
    settings = replace(settings, kafka=replace(settings.kafka, control_fetch_wait_ms=250))
    io = WaitsIO()
    trading.build_flow(settings, io)
    assert io.waits == {"ticks_in": None, "model_control_in": 250, "inbound_in": None}
