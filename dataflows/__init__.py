"""Wiring: the Bytewax flows (trading, gateway, persist), settings and the `hfl` CLI."""
