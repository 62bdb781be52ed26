"""Telemetry every layer above the pure core may import: Prometheus metrics, structured logs."""
