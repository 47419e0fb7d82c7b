"""Two qadmin trees measured by one benchmark, interleaved: is a change faster, slower, or noise?

    python -m bench.ab BEFORE AFTER [--rounds 3] [--bench worker_throughput,enqueue] [-- BENCH ARGS...]

BEFORE and AFTER are source trees (a git worktree of each commit: `git worktree add /tmp/before
0126a4a`). Each round runs every benchmark once against BEFORE and once against AFTER, the order
of the two swapped every round, so both see the same machine load. The benchmark code itself is
this checkout's for both (only `qadmin` changes): each side runs from a directory of its own holding
a copy of this checkout's `bench/`, a link to its tree's `qadmin/` and to this checkout's `tests/`.
The benchmarks start their worker processes there (bench.common.ROOT is that directory: their
working directory and the head of their PYTHONPATH), so a worker imports its side's qadmin — a
shim that was only put on PYTHONPATH lost to the checkout's own qadmin in `python -m qadmin`.

It prints, per cell, the median of each side and AFTER / BEFORE (above 1 is faster for rates,
slower for durations — the unit column says which), and the spread of each side (max / min) so a
difference inside the noise reads as one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def side_root(tree: Path, workdir: Path) -> Path:
    """A directory that runs this checkout's benchmarks against `tree`'s qadmin (see the docstring)."""
    root = workdir / f"side-{tree.name}-{abs(hash(str(tree)))}"
    if not root.exists():
        root.mkdir()
        shutil.copytree(HERE / "bench", root / "bench", ignore=shutil.ignore_patterns("__pycache__"))
        (root / "qadmin").symlink_to(tree / "qadmin")
        (root / "tests").symlink_to(HERE / "tests")
    return root


def run_once(tree: Path, bench: str, extra: list[str], workdir: Path) -> dict[str, dict[str, object]]:
    """One round of `bench` against `tree`: cell name -> its result record."""
    root = side_root(tree, workdir)
    out = workdir / f"{bench}-{tree.name}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", f"bench.{bench}", "--repeats", "1", "--json", str(out), *extra]
    subprocess.run(cmd, env=env, cwd=root, check=True, stdout=subprocess.DEVNULL)
    data = json.loads(out.read_text())[bench]["results"]
    return {r["name"]: r for r in data}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bench", default="worker_throughput,enqueue", help="comma-separated bench modules")
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    for side, tree in trees.items():
        if not (tree / "qadmin" / "__init__.py").is_file():
            parser.error(f"{side}: {tree} holds no qadmin package")
    benches = [b.strip() for b in args.bench.split(",") if b.strip()]
    values: dict[tuple[str, str], dict[str, list[float]]] = {}
    units: dict[tuple[str, str], tuple[str, bool]] = {}
    with tempfile.TemporaryDirectory(prefix="qadmin-ab-") as tmp:
        for round_no in range(args.rounds):
            order = ["before", "after"] if round_no % 2 == 0 else ["after", "before"]
            for bench in benches:
                for side in order:
                    print(f"round {round_no + 1}/{args.rounds}: {bench} · {side}", file=sys.stderr, flush=True)
                    for name, rec in run_once(trees[side], bench, extra, Path(tmp)).items():
                        if not name.startswith("qadmin") or not rec.get("values"):
                            continue
                        key = (bench, name)
                        values.setdefault(key, {"before": [], "after": []})[side].extend(rec["values"])
                        units[key] = (str(rec["unit"]), str(rec["unit"]).endswith("/s"))
    print("| cell | unit | before (median) | after (median) | after / before | spread before | spread after |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for (bench, name), sides in sorted(values.items()):
        if not sides["before"] or not sides["after"]:
            continue
        b, a = statistics.median(sides["before"]), statistics.median(sides["after"])
        unit, _ = units[(bench, name)]

        def spread(v: list[float]) -> str:
            return f"{max(v) / min(v):.2f}" if min(v) > 0 else "–"

        print(
            f"| {bench}: {name} | {unit} | {b:,.1f} | {a:,.1f} | {a / b:.3f} | "
            f"{spread(sides['before'])} | {spread(sides['after'])} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
