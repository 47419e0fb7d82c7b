"""The benchmark scripts run end to end at tiny sizes and print their tables.

Times are never asserted: only that each script exits 0 and prints a row for every cell, with a
figure or a stated reason to skip it (a peer that is not installed, a face not written yet), never
a crashed cell.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def bench(*args: str, timeout: float = 240) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc.stdout


def rows(output: str) -> dict[str, str]:
    """First cell of each Markdown table row -> the rest of the row."""
    out = {}
    for line in output.splitlines():
        if line.startswith("| ") and not line.startswith("| cell ") and not line.startswith("|---"):
            first, _, rest = line[2:].partition(" | ")
            out[first.strip()] = rest
    return out


def assert_measured(row: str, name: str) -> None:
    assert "error:" not in row, f"{name} crashed: {row}"
    assert re.match(r"\s*[\d,.]+ ", row) or row.strip().startswith("skipped:"), f"{name}: {row}"


def test_worker_throughput_prints_every_cell() -> None:
    out = bench("bench.worker_throughput", "--quick", "--jobs", "60")
    table = rows(out)
    for name in (
        "floor sqlite ×1",
        "qadmin sqlite ×1",
        "qadmin sqlite ×2",
        "floor postgresql ×1",
        "qadmin postgresql ×1",
        "floor redis ×1",
        "qadmin redis ×1",
        "rq SimpleWorker ×1",
        "rq Worker (fork) ×1",
        "delayed_job sqlite ×1",
    ):
        assert name in table, f"no row {name!r} in:\n{out}"
        assert_measured(table[name], name)
    # the embedded backend needs no server: its cells always carry a figure
    assert not table["qadmin sqlite ×1"].startswith("skipped"), out


def test_peer_bench_prints_a_table_per_backend_with_qadmin_and_every_sql_peer() -> None:
    out = bench("bench.peer_bench", "--quick", "--jobs", "60", timeout=420)
    tables = out.split("### Peers on ")[1:]
    assert [t.split(":", 1)[0] for t in tables] == ["sqlite", "postgresql", "redis"], out
    expected = {
        "sqlite": ("qadmin", "delayed_job", "huey SqliteHuey"),
        "postgresql": ("qadmin", "procrastinate", "pgqueuer batch 1", "pgqueuer batch 10"),
        "redis": ("qadmin",),
    }
    for text in tables:
        kind = text.split(":", 1)[0]
        table = rows(text)
        for system in expected[kind]:
            for procs in (1, 2):
                name = f"{system} ×{procs}"
                assert name in table, f"no row {name!r} in:\n{text}"
                assert_measured(table[name], name)
        assert "load average" in text and "versions:" in text, text
    # the embedded backend needs no server: qadmin's SQLite cells always carry a figure
    assert not rows(tables[0])["qadmin ×1"].startswith("skipped"), out


def test_enqueue_prints_every_cell() -> None:
    out = bench("bench.enqueue", "--quick", "--jobs", "50")
    table = rows(out)
    for name in (
        "rq enqueue",
        "rq enqueue_many",
        "qadmin sqlite enqueue",
        "qadmin sqlite enqueue_many",
        "qadmin postgresql enqueue",
        "qadmin redis enqueue_many",
    ):
        assert name in table, f"no row {name!r} in:\n{out}"
        assert_measured(table[name], name)
    assert not table["qadmin sqlite enqueue_many"].startswith("skipped"), out


def test_admin_scale_prints_verbs_faces_and_latency() -> None:
    out = bench("bench.admin_scale", "--quick", "--scale", "500", "--web-seconds", "0.2")
    table = rows(out)
    for verb in (
        "first page",
        "list by class",
        "stats",
        "error groups",
        "retry all failed",
        "dequeue class+args",
        "unlock stale",
    ):
        for kind in ("sqlite", "postgresql", "redis"):
            name = f"{verb} · {kind}"
            assert name in table, f"no row {name!r} in:\n{out}"
            assert_measured(table[name], name)
    for name in (
        "web jobs page · sqlite",
        "web failed jobs page · sqlite",
        "TUI first screen · sqlite",
        "rq-dashboard failed page",
    ):
        assert name in table, f"no row {name!r} in:\n{out}"
        assert_measured(table[name], name)
    assert "Web latency per page view" in out


def test_scaling_pivots_sizes() -> None:
    out = bench("bench.scaling", "--quick", "--sizes", "200,400", "--backends", "sqlite")
    assert "| 200 jobs | 400 jobs | 400 / 200 |" in out
    assert re.search(r"\| first page \| sqlite \| [\d.,]+ \| [\d.,]+ \| [\d.]+× \|", out), out


def test_memory_samples_checkpoints() -> None:
    out = bench("bench.memory", "--quick", "--jobs", "100", "--backends", "sqlite")
    assert re.search(
        r"\| sqlite \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [+-][\d.]+ \((flat|GROWS)\) \|", out
    ), out


def test_async_pool_prints_both_pools() -> None:
    out = bench("bench.async_pool", "--quick", "--backends", "sqlite")
    table = rows(out)
    for name in ("sqlite process ×2", "sqlite async ×50"):
        assert name in table, f"no row {name!r} in:\n{out}"
        assert_measured(table[name], name)


def test_run_all_prints_header_and_tables() -> None:
    out = bench("bench.run_all", "--quick", "--only", "enqueue", "--backends", "sqlite")
    assert "## qadmin benchmarks" in out and "versions:" in out
    assert "qadmin sqlite enqueue_many" in out


def test_admin_scale_failed_scale_prints_each_verb_at_each_size() -> None:
    out = bench("bench.admin_scale", "--failed-scale", "--quick", "--failed-sizes", "300,1200")
    table = rows(out)
    for verb in ("stats", "counts per queue and state", "first page of billing's failures", "retry billing"):
        for size in ("300 failed", "1k failed"):
            name = f"{verb} · {size}"
            assert name in table, f"no row {name!r} in:\n{out}"
            assert_measured(table[name], name)


def test_rq_dashboard_cells_state_why_rq_is_missing_under_their_own_names(tmp_path: Path) -> None:
    from bench.admin_scale import FaceCells, face_cells
    from bench.common import Skip, interleave

    cells = face_cells(FaceCells(tmp_path, 0.1), [], Skip("PyPI rq is not installed"))
    results = interleave(cells, 1, log=lambda _line: None)
    assert {r.name: r.skipped for r in results} == {
        "rq-dashboard failed page": "PyPI rq is not installed",
        "rq-dashboard failed page · granian": "PyPI rq is not installed",
        "rq-dashboard overview": "PyPI rq is not installed",
    }


def test_seams_measure_every_trick_against_its_plain_path() -> None:
    out = bench("bench.seams", "--quick", "--jobs", "60", "--views", "5")
    table = rows(out)
    for name in (
        "sqlite SqliteVerbs enqueue",
        "sqlite CoreVerbs worker loop ×10",
        "postgresql PreparedPg worker loop ×1",
        "postgresql CoreVerbs enqueue",
        "redis SuccessWrites.PIPELINED worker loop ×10",
        "redis SuccessWrites.AWAITED worker loop ×10",
        "web SharedRender /jobs",
        "web PlainRender /",
    ):
        assert name in table, f"no row {name!r} in:\n{out}"
        assert_measured(table[name], name)
        if name.startswith(("sqlite", "web")):  # no server needed: always a figure
            assert not table[name].startswith("skipped"), f"{name}: {table[name]}"


def test_ab_compares_two_trees_with_the_same_benchmark() -> None:
    out = bench(
        "bench.ab", str(ROOT), str(ROOT), "--rounds", "1", "--bench", "enqueue", "--", "--quick", "--backends", "sqlite"
    )
    table = rows(out)
    assert "enqueue: qadmin sqlite enqueue" in table, out
    assert re.match(r"\s*jobs/s \| [\d,.]+ \| [\d,.]+ \| [\d.]+ \|", table["enqueue: qadmin sqlite enqueue"]), out
