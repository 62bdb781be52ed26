"""A small HTTP/1.1 load generator: N keep-alive clients, each one request at a time,
plus N live viewers timing the server-sent updates they receive meanwhile.

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
    update_gaps_ms: np.ndarray

    def summary(self) -> dict[str, float | int | None]:
        """Request rate, latency percentiles and live-update gaps, rounded for printing."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 2),
            "req_per_s": round(self.requests / self.duration_s, 1) if self.duration_s else 0.0,
            "p50_ms": _percentile(self.latencies_ms, 50),
            "p99_ms": _percentile(self.latencies_ms, 99),
            "updates": int(self.update_gaps_ms.size),
            "update_gap_p50_ms": _percentile(self.update_gaps_ms, 50),
            "update_gap_max_ms": _percentile(self.update_gaps_ms, 100),
        }


def _percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


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


async def _viewer(host: str, port: int, path: str, deadline: float, gaps: list[float]) -> None:
    """Follow a server-sent event stream (chunked) and record the gaps between updates."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await reader.readuntil(b"\r\n\r\n")
    last = None
    try:
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return
            try:
                size = int(await asyncio.wait_for(reader.readline(), remaining), 16)
            except TimeoutError:
                return
            await reader.readexactly(size + 2)
            now = time.perf_counter()
            if last is not None:
                gaps.append((now - last) * 1e3)
            last = now
    finally:
        writer.close()


async def run_load(
    host: str,
    port: int,
    paths: Sequence[str],
    *,
    clients: int,
    duration_s: float,
    viewers: int = 0,
    stream_path: str = "/api/stream",
) -> LoadResult:
    """Run `clients` keep-alive clients cycling over `paths` for `duration_s`, while
    `viewers` follow `stream_path` and time the gaps between the updates they get."""
    latencies: list[float] = []
    gaps: list[float] = []
    started = time.perf_counter()
    deadline = started + duration_s
    errors, _ = await asyncio.gather(
        asyncio.gather(*(_client(host, port, paths, deadline, latencies) for _ in range(clients))),
        asyncio.gather(*(_viewer(host, port, stream_path, deadline, gaps) for _ in range(viewers))),
    )
    return LoadResult(
        requests=len(latencies),
        errors=sum(errors),
        duration_s=time.perf_counter() - started,
        latencies_ms=np.asarray(latencies),
        update_gaps_ms=np.asarray(gaps),
    )
