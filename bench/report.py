"""Medians over repetitions, and the markdown table the benchmark prints."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Row:
    scenario: str
    figures: dict[str, float | int | str] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def median_of(reps: int, measure: Callable[[], float]) -> float:
    """`measure()` run `reps` times in a row, its median (every figure and every limit is
    the median of `--reps` runs)."""
    return median([measure() for _ in range(reps)])


def table(rows: list[Row]) -> str:
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row.figures if c not in columns]
    lines = [
        "| scenario | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = []
        for column in columns:
            value = row.figures.get(column, "")
            cells.append(f"{value:,.1f}" if isinstance(value, float) else str(value))
        lines.append(f"| {row.scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
