"""Execution gateways: turn approved orders into order events and fills."""

from connectors.gateway.paper import InstrumentBook, PaperBrokerConfig, TickColumns, WorkingOrder

__all__ = ["InstrumentBook", "PaperBrokerConfig", "TickColumns", "WorkingOrder"]
