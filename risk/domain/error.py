"""The project's error hierarchy: one root, transient I/O apart."""

from __future__ import annotations


class HflError(Exception):
    """Root of every error hedgefund-lite raises on purpose."""


class RecoverableError(HflError):
    """Transient I/O failure: retried with backoff, then the flow crashes and replays."""


class ConfigError(HflError):
    """Invalid configuration; the message lists every problem found."""
