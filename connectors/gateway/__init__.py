"""Execution gateways: turn approved orders into order events and fills."""

from connectors.gateway.paper import InstrumentBook, PaperBrokerConfig, WorkingOrder

__all__ = ["InstrumentBook", "PaperBrokerConfig", "WorkingOrder"]
