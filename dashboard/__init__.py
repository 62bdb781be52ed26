"""The trading dashboard: a web page, JSON API, Prometheus exporter, health and alerts."""
