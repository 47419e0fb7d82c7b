"""Two qadmin trees measured by one benchmark, interleaved: is a change faster, slower, or noise?

    python -m bench.ab BEFORE AFTER [--rounds 3] [--bench worker_throughput,enqueue] [-- BENCH ARGS...]

BEFORE and AFTER are source trees (a git worktree of each commit: `git worktree add /tmp/before
0126a4a`). Each round runs every benchmark once against BEFORE and once against AFTER, the order
of the two swapped every round, so both see the same machine load. The benchmark code itself is
this checkout's for both (only `qadmin` changes): a temporary directory holding a `qadmin` link to
the tree is put first on PYTHONPATH, which the worker processes the benchmarks start inherit.

It prints, per cell, the median of each side and AFTER / BEFORE (above 1 is faster for rates,
slower for durations — the unit column says which), and the spread of each side (max / min) so a
difference inside the noise reads as one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def run_once(tree: Path, bench: str, extra: list[str], workdir: Path) -> dict[str, dict[str, object]]:
    """One round of `bench` against `tree`: cell name -> its result record."""
    shim = workdir / f"shim-{tree.name}-{os.getpid()}"
    shim.mkdir(exist_ok=True)
    link = shim / "qadmin"
    if not link.exists():
        link.symlink_to(tree / "qadmin")
    out = workdir / f"{bench}-{tree.name}.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shim), str(HERE)])}
    cmd = [sys.executable, "-m", f"bench.{bench}", "--repeats", "1", "--json", str(out), *extra]
    subprocess.run(cmd, env=env, cwd=workdir, check=True, stdout=subprocess.DEVNULL)
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
