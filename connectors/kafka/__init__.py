"""Kafka adapters: a fail-closed source, a sink that checks every delivery, admin."""
