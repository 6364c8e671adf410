"""Speed-up of factorcore over each peer, from a pytest-benchmark JSON file.

Usage::

    pytest benches --benchmark-only --benchmark-json=bench-results/quick.json
    python benches/ratios.py bench-results/quick.json [--out FILE.md] [--check]
    python benches/ratios.py bench-results/quick.json --update-baseline

Each benchmark group holds one factorcore entry and its peers on the same inputs (see
``benches/conftest.py``). The speed-up of a peer is its best time (times its ``scale``,
when it ran on a sample of the work) over factorcore's best time in the group.

``--check`` compares every speed-up with ``benches/baseline.json`` (speed-ups measured on
a quiet machine at the same sizes) and fails when factorcore has lost more than
``--margin`` of its lead over a peer: a speed-up below ``baseline * (1 - margin)``.
Ratios, not absolute times, because CI machines differ and are noisy.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

BASELINE = Path(__file__).with_name("baseline.json")
MARGIN = 0.5


@dataclass(frozen=True)
class Ratio:
    group: str
    factorcore: float  # seconds
    peer: str
    peer_time: float  # seconds, scaled to the whole workload
    scale: float

    @property
    def speedup(self) -> float:
        return self.peer_time / self.factorcore


def ratios(results: dict) -> list[Ratio]:
    """One Ratio per peer, in the order the groups and peers ran."""
    groups: dict[str, list[dict]] = {}
    for bench in results["benchmarks"]:
        groups.setdefault(bench["group"], []).append(bench)
    out = []
    for group, entries in groups.items():
        ours = [e for e in entries if e["extra_info"].get("side") == "factorcore"]
        if len(ours) != 1:
            raise SystemExit(f"group {group!r} has {len(ours)} factorcore entries, expected 1")
        base = ours[0]["stats"]["min"] * ours[0]["extra_info"].get("scale", 1.0)
        for entry in entries:
            if entry["extra_info"].get("side") != "peer":
                continue
            scale = float(entry["extra_info"].get("scale", 1.0))
            name = entry["extra_info"].get("name", entry["name"])
            out.append(Ratio(group, base, name, entry["stats"]["min"] * scale, scale))
    return out


def seconds(t: float) -> str:
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.0f} µs"


def peer_time(r: Ratio) -> str:
    return seconds(r.peer_time) + (f" (x{r.scale:.3g} extrap.)" if r.scale != 1 else "")


def table(rows: list[Ratio], baseline: dict[str, float], margin: float) -> tuple[str, list[str]]:
    """The Markdown table and the list of failures against the baseline."""
    if not baseline:
        lines = ["| workload | factorcore | peer | peer time | speed-up |", "|---|---|---|---|---|"]
        for r in rows:
            lines.append(
                f"| {r.group} | {seconds(r.factorcore)} | {r.peer} | {peer_time(r)} | "
                f"{r.speedup:.2f}x |"
            )
        return "\n".join(lines) + "\n", []
    lines = [
        "| workload | factorcore | peer | peer time | speed-up | baseline | floor | pass |",
        "|---|---|---|---|---|---|---|---|",
    ]
    failures = []
    for r in rows:
        key = f"{r.group} :: {r.peer}"
        known = baseline.get(key)
        floor = known * (1 - margin) if known is not None else None
        verdict = "new" if floor is None else ("pass" if r.speedup >= floor else "**FAIL**")
        if verdict == "**FAIL**":
            failures.append(f"{key}: speed-up {r.speedup:.2f}x < floor {floor:.2f}x")
        lines.append(
            f"| {r.group} | {seconds(r.factorcore)} | {r.peer} | {peer_time(r)} | "
            f"{r.speedup:.2f}x | {'-' if known is None else f'{known:.2f}x'} | "
            f"{'-' if floor is None else f'{floor:.2f}x'} | {verdict} |"
        )
    return "\n".join(lines) + "\n", failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("results", type=Path, help="a --benchmark-json file")
    parser.add_argument("--out", type=Path, help="also write the Markdown table here")
    parser.add_argument("--check", action="store_true", help="exit 1 below a baseline floor")
    parser.add_argument(
        "--margin", type=float, default=MARGIN, help="share of the lead that may be lost (0.5)"
    )
    parser.add_argument("--baseline", type=Path, default=BASELINE, help="baseline speed-ups (JSON)")
    parser.add_argument("--no-baseline", action="store_true", help="the speed-ups only")
    parser.add_argument(
        "--update-baseline", action="store_true", help="write these speed-ups as the baseline"
    )
    args = parser.parse_args(argv)

    rows = ratios(json.loads(args.results.read_text()))
    if args.update_baseline:
        speedups = {f"{r.group} :: {r.peer}": round(r.speedup, 3) for r in rows}
        args.baseline.write_text(json.dumps(speedups, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {len(speedups)} baseline speed-ups to {args.baseline}")
    baseline = {}
    if not args.no_baseline and args.baseline.exists():
        baseline = json.loads(args.baseline.read_text())
    markdown, failures = table(rows, baseline, args.margin)
    print(markdown)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(markdown)
    missing = sorted(set(baseline) - {f"{r.group} :: {r.peer}" for r in rows})
    if missing:
        print(f"not measured this run: {', '.join(missing)}", file=sys.stderr)
    if failures:
        print("factorcore lost its lead:\n  " + "\n  ".join(failures), file=sys.stderr)
    return 1 if args.check and (failures or missing) else 0


if __name__ == "__main__":
    sys.exit(main())
