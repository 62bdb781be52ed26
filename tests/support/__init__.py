"""Helpers the tests share: factories, loopback ports, small flows."""
