"""The shape of a run's results, as written to ``benchmarks/results/<date>-<host>.json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.stats import ratio

SCHEMA = 1


@dataclass
class Figure:
    """One number, with what it is compared with and the goal it is held against (never asserted)."""

    name: str
    unit: str
    value: float | None  # cs3sync (CS3ContentsManager on the emulator)
    baseline: float | None = None  # the comparison: the local manager unless baseline_label says otherwise
    baseline_label: str = "local"
    goal: str | None = None
    met: bool | None = None  # None = no goal, or not measurable
    note: str = ""
    headline: bool = False  # shown in the README's summary table (figures with a goal always are)
    peer: float | None = None  # the same figure for cs3-jupyter 0.2.0 (the package cs3sync replaces)

    @property
    def ratio(self) -> float | None:
        return ratio(self.value, self.baseline)

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"ratio": self.ratio}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figure:
        data = {k: v for k, v in data.items() if k != "ratio"}
        return cls(**data)


@dataclass
class Measurement:
    """One of the issue's eight measurements: its command, sizes, figures, and anything not available."""

    key: str
    title: str
    command: str
    sizes: str
    figures: list[Figure] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)  # "cs3: not available: <reason>"
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def not_available(self, side: str, reason: str) -> None:
        reason = " ".join(str(reason).split())
        if len(reason) > 300:
            reason = reason[:297] + "..."
        self.unavailable.append(f"{side}: not available: {reason}")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["figures"] = [f.to_json() for f in self.figures]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        data = dict(data)
        figures = [Figure.from_json(f) for f in data.pop("figures", [])]
        return cls(**data, figures=figures)


def goal_check(value: float | None, limit: float, *, below: bool = True) -> bool | None:
    """``value < limit`` (or ``>`` with below=False); None when there is no value."""
    if value is None:
        return None
    return value < limit if below else value > limit
