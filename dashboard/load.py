"""A small HTTP/1.1 load generator: N keep-alive clients, each one request at a time.

Used by `hfl bench dashboard`. Written on raw asyncio streams so the client side costs
little next to the server it measures (both share the machine).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """What a load run measured."""

    requests: int
    errors: int
    duration_s: float
    latencies_ms: np.ndarray

    def summary(self) -> dict[str, float | int]:
        """Request rate and latency percentiles, rounded for printing."""
        lat = self.latencies_ms
        pick = (lambda q: round(float(np.percentile(lat, q)), 3)) if lat.size else (lambda q: 0.0)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 2),
            "req_per_s": round(self.requests / self.duration_s, 1) if self.duration_s else 0.0,
            "p50_ms": pick(50),
            "p99_ms": pick(99),
        }


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _client(
    host: str, port: int, paths: Sequence[str], deadline: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    requests = [
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive\r\n\r\n".encode()
        for path in paths
    ]
    errors = 0
    i = 0
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            if await _read_response(reader) != 200:
                errors += 1
            latencies.append((time.perf_counter() - started) * 1e3)
    finally:
        writer.close()
    return errors


async def run_load(
    host: str, port: int, paths: Sequence[str], *, clients: int, duration_s: float
) -> LoadResult:
    """Run `clients` concurrent keep-alive clients cycling over `paths` for `duration_s`."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + duration_s
    errors = await asyncio.gather(
        *(_client(host, port, paths, deadline, latencies) for _ in range(clients))
    )
    return LoadResult(
        requests=len(latencies),
        errors=sum(errors),
        duration_s=time.perf_counter() - started,
        latencies_ms=np.asarray(latencies),
    )
