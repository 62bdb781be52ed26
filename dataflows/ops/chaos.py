"""`hfl chaos report`: the figures the chaos suite (`tests/chaos`) measured.

Each chaos test records its figures under its id (R1…R7) in one JSON file
(`var/chaos/results.json` by default, `HFL_CHAOS_RESULTS` to move it); the report
shows them as a table or, with `--json`, as one JSON object keyed by test id.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson

Figures = dict[str, Any]
# Columns every test reports where they apply, first in the table.
HEADLINE = ("lost", "duplicated", "mismatched", "recovery_s_p50", "recovery_s_p99")


def results_path(root: Path) -> Path:
    """Where the chaos suite writes its figures."""
    return Path(os.environ.get("HFL_CHAOS_RESULTS", root / "var" / "chaos" / "results.json"))


def load_results(path: Path) -> dict[str, Figures]:
    """Figures by test id; empty when the suite never ran."""
    try:
        return dict(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return {}


def record_result(path: Path, test_id: str, figures: Figures) -> None:
    """Store `figures` of `test_id` (replacing its previous ones) with the time measured."""
    results = load_results(path)
    results[test_id] = {
        **figures,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2))


# Counts that add up over a test's parts, and the recovery time that takes the worst part.
_SUMMED = ("lost", "duplicated", "mismatched")


def by_test(results: dict[str, Figures]) -> dict[str, Figures]:
    """Group parts (`R2-gateway`, `R2-persist`) under their test id (`R2`).

    A test's `lost`, `duplicated` and `mismatched` are the sums over its parts and its
    `recovery_s_p99` the worst part's, where the parts report them; each part's own
    figures stay under `parts`.

    >>> by_test({"R2-a": {"lost": 0, "recovery_s_p99": 2.0},
    ...          "R2-b": {"lost": 1, "recovery_s_p99": 3.5}})["R2"]["lost"]
    1
    >>> by_test({"R7": {"orders": 0}})
    {'R7': {'orders': 0}}
    """
    grouped: dict[str, dict[str, Figures]] = {}
    for key, figures in results.items():
        grouped.setdefault(key.split("-", 1)[0], {})[key] = figures
    out: dict[str, Figures] = {}
    for test_id, parts in grouped.items():
        if list(parts) == [test_id]:
            out[test_id] = parts[test_id]
            continue
        summary: Figures = {}
        for name in _SUMMED:
            if values := [f[name] for f in parts.values() if name in f]:
                summary[name] = sum(values)
        if p99 := [f["recovery_s_p99"] for f in parts.values() if "recovery_s_p99" in f]:
            summary["recovery_s_p99"] = max(p99)
        out[test_id] = {**summary, "parts": parts}
    return out


def render_json(results: dict[str, Figures]) -> str:
    """One JSON object keyed by test id (R0…R7), parts grouped as `by_test` does.

    >>> render_json({"R7-a": {"orders": 0}})
    '{"R7":{"parts":{"R7-a":{"orders":0}}}}'
    """
    return orjson.dumps(by_test(results), option=orjson.OPT_SORT_KEYS).decode()


def render_table(results: dict[str, Figures]) -> str:
    """A row per test: the headline counts, then its other figures as `name=value`.

    >>> print(render_table({"R7": {"lost": 0, "orders": 0}}))
    test  lost  duplicated  mismatched  recovery_s_p50  recovery_s_p99  other
    R7    0     -           -           -               -               orders=0
    """
    header = ("test", *HEADLINE, "other")
    rows = [header]
    for test_id in sorted(results):
        figures = results[test_id]
        other = " ".join(
            f"{name}={_short(value)}"
            for name, value in sorted(figures.items())
            if name not in HEADLINE and name != "measured_at"
        )
        rows.append((test_id, *(_short(figures.get(name, "-")) for name in HEADLINE), other))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ).rstrip()


def _short(value: object) -> str:
    if isinstance(value, list) and len(value) > 8:
        return f"[{', '.join(map(str, value[:8]))}, … {len(value)} in all]"
    return str(value)
