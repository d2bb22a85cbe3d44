"""The benchmarks' own plumbing (no timing): statistics, sizes, results JSON and the generated tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import report
from benchmarks.env import Sizes
from benchmarks.rest import CHUNK_SIZE, make_notebook, payload_chunks
from benchmarks.results import Figure, Measurement
from benchmarks.stats import median, p99, quantile


def test_quantiles_interpolate_like_numpy() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert quantile([0.0, 10.0], 0.25) == 2.5
    assert p99([]) is None
    assert p99([5.0]) == 5.0


def test_payload_is_chunked_like_jupyterlab() -> None:
    chunks = list(payload_chunks(2 * CHUNK_SIZE + 10))
    assert [len(c) for c in chunks] == [CHUNK_SIZE, CHUNK_SIZE, 10]
    assert chunks[0] != chunks[1]


def test_notebook_has_the_requested_size() -> None:
    size = len(json.dumps(make_notebook(100_000)))
    assert 80_000 < size < 120_000


def test_size_overrides() -> None:
    sizes = Sizes.quick_run().override(["listing=10,20", "storm=5"])
    assert sizes.listing == (10, 20) and sizes.storm == 5 and sizes.quick
    with pytest.raises(KeyError):
        Sizes.full().override(["nope=1"])


def _results() -> dict[str, object]:
    listing = Measurement("listing", "Listing big folders", "`GET`", "1,000 files")
    listing.add(Figure("1,000 entries: time per listing", "ms", 30.0, 20.0, goal="≤ 1.5x local", met=True))
    listing.add(Figure("1,000 entries: RPCs per listing", "count", 2.0, goal="1 RPC", met=False))
    storm = Measurement("storm", "Offline storm", "PUT", "10 saves")
    storm.not_available("cs3sync", "the emulator did not start")
    return {
        "date": "2026-01-01T00:00:00+00:00",
        "quick": True,
        "duration_s": 42.0,
        "machine": {"cores": 2, "cpu": "cpu", "memory_bytes": 1 << 30, "os": "Linux", "python": "3.11"},
        "measurements": [listing.to_json(), storm.to_json()],
    }


def test_tables_show_figures_ratios_goals_and_gaps() -> None:
    text = report.render(_results(), "x.json")
    assert "| 1,000 entries: time per listing | 30.0 ms | 20.0 ms | 1.50x | ≤ 1.5x local: met |" in text
    assert "1 RPC: **missed**" in text
    assert "cs3sync: not available: the emulator did not start" in text
    assert "Listing big folders: 1,000 entries: RPCs per listing = 2 (goal 1 RPC)" in text
    summary = report.render_performance(_results(), "x.json")
    assert "time per listing" in summary and "`benchmarks/results/x.json`" in summary


def test_readme_block_is_replaced_in_place(tmp_path: Path) -> None:
    text = f"intro\n\n{report.START}\nold\n{report.END}\n\noutro\n"
    replaced = report._replace_block(text, "new\n")
    assert "old" not in replaced and "new" in replaced and replaced.endswith("outro\n")


def test_peer_column_appears_only_with_peer_figures() -> None:
    save = Measurement("save", "Save latency", "PUT", "100 KB")
    save.add(Figure("100 KB notebook: save p50", "ms", 9.0, 6.0, peer=23.0, goal="≤ local + 5 ms", met=True))
    results = _results() | {"measurements": [save.to_json()]}
    text = report.render(results, "x.json")
    assert f"| figure | cs3sync | baseline | {report.PEER_COLUMN} | ratio | goal |" in text
    assert "| 100 KB notebook: save p50 | 9.00 ms | 6.00 ms | 23.0 ms | 1.50x | ≤ local + 5 ms: met |" in text
    assert report.PEER_COLUMN in report.render_performance(results, "x.json")
    assert "| cs3sync | baseline | ratio | goal |" in report.render(_results(), "x.json")  # older results


def test_a_late_wake_up_is_split_by_jupyter_servers_own_work() -> None:
    from benchmarks.looplag import Recorder

    recorder = Recorder()
    # Late wake-ups (slept at, woke at, lag): 100 ms late with 50 ms of jupyter_server's work inside it;
    # 80 ms late with none (the manager's); 60 ms late, all of it inside jupyter_server's work.
    recorder.late = [(0.0, 0.105, 0.100), (1.0, 1.085, 0.080), (2.0, 2.065, 0.060)]
    recorder.server_work = [(0.02, 0.07), (1.5, 1.6), (1.995, 2.07)]
    server, manager = recorder.attributed()
    assert server == pytest.approx(0.06)
    assert manager == pytest.approx(0.08)
