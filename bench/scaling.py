"""The scaling curve: each admin verb at 10k, 100k and 1M jobs per backend, to show which costs stay
flat (keyset pages, indexed lookups) and which grow with the queue (counts, scans, bulk verbs).

    python -m bench.scaling [--sizes 10000,100000,1000000] [--repeats 3] [--quick]
    python -m bench.scaling --sizes 10000,100000 --from-json results.json   (1M column from admin_scale)

All sizes are loaded side by side, then every verb on every size and backend runs once per round,
interleaved. Verbs whose work is one page should cost about the same at every size; the last column
is the 1M / 10k ratio (about 100 for a verb that is linear in the queue).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

from bench.admin_scale import Loaded, load_backend, verb_cells
from bench.common import (
    Result,
    Servers,
    Skip,
    backends_arg,
    base_parser,
    fmt,
    interleave,
    machine,
    progress,
    write_json,
)


def pivot(results: list[Result], sizes: list[int]) -> str:
    cells: dict[tuple[str, str], dict[int, Result]] = {}
    for r in results:
        verb, _, where = r.name.partition(" · ")
        kind, _, size = where.partition(" @ ")
        if not size:
            continue
        cells.setdefault((verb, kind), {})[int(size)] = r
    head = " | ".join(f"{s:,} jobs" for s in sizes)
    lines = [
        f"### Admin verbs by queue size (median ms; {len(sizes)} sizes loaded side by side)",
        "",
        f"| verb | backend | {head} | {sizes[-1]:,} / {sizes[0]:,} |",
        "|---|---|" + "---:|" * (len(sizes) + 1),
    ]
    for (verb, kind), by_size in sorted(cells.items()):
        values = []
        for s in sizes:
            r = by_size.get(s)
            values.append("skipped" if r is None or r.skipped or not r.values else f"{fmt(r.median)}")
        first, last = by_size.get(sizes[0]), by_size.get(sizes[-1])
        growth = (
            last.median / first.median if first and last and first.values and last.values and first.median > 0 else None
        )
        lines.append(f"| {verb} | {kind} | {' | '.join(values)} | {'' if growth is None else f'{growth:.1f}×'} |")
    return "\n".join(lines) + "\n"


def from_json(path: str, sizes: list[int]) -> list[Result]:
    """admin_scale's verb results for its size, renamed as this script names cells."""
    data = json.loads(Path(path).read_text()).get("admin_scale")
    if not data or data.get("scale") in sizes:
        return []
    out = []
    for raw in data["results"]:
        verb, _, kind = raw["name"].partition(" · ")
        if raw["unit"] != "ms" or verb.startswith("TUI") or not kind:
            continue
        out.append(
            Result(f"{verb} · {kind} @ {data['scale']}", "ms", False, values=raw["values"], skipped=raw["skipped"])
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--from-json", help="take the verbs of `bench.admin_scale --json` for its size from this file")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    repeats = args.repeats
    if args.quick:
        sizes, repeats = ([500, 2000] if args.sizes == parser.get_default("sizes") else sizes), 1
    started = time.monotonic()
    previous = from_json(args.from_json, sizes) if args.from_json else []
    with Servers() as servers:
        loaded: list[Loaded] = []
        skipped: list[str] = []
        for kind in backends_arg(args.backends):
            for n in sizes:
                try:
                    loaded.append(load_backend(servers, kind, n, suffix="_s"))
                except Skip as exc:
                    skipped.append(f"{kind}: {exc}")
                    break
        cells = [c for b in loaded for c in verb_cells(b, f"{b.kind} @ {b.layout.n}")]
        progress(f"scaling: {len(cells)} cells, {repeats} rounds")
        try:
            results = interleave(cells, repeats)
        finally:
            for b in loaded:
                if b.ops is not None:
                    b.ops.close()
    all_sizes = sorted(set(sizes) | {int(r.name.rsplit(" @ ", 1)[1]) for r in previous})
    out = pivot(results + previous, all_sizes)
    notes = [f"* skipped: {s}" for s in skipped]
    if previous:
        notes.append(f"* the {max(all_sizes):,} column is from bench.admin_scale in the same run_all")
    print(out + "\n".join(notes) + f"\n* machine: {machine()}\n* wall time: {time.monotonic() - started:.0f} s\n")
    write_json(
        args.json,
        "scaling",
        results,
        sizes=sizes,
        repeats=repeats,
        medians={r.name: statistics.median(r.values) for r in results if r.values},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
