"""The benchmark tooling: speed-ups from pytest-benchmark JSON, the baseline check, and
the README splice of the latest results."""

from __future__ import annotations

import json
import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parents[1] / "benches"
sys.path.insert(0, str(BENCHES))

import ratios  # noqa: E402
import readme  # noqa: E402


def entry(group: str, name: str, side: str, best: float, scale: float = 1.0) -> dict:
    info = {"group": group, "name": name, "side": side, "scale": scale}
    return {"group": group, "name": f"test_{name}", "extra_info": info, "stats": {"min": best}}


RESULTS = {
    "benchmarks": [
        entry("g", "factorcore", "factorcore", 0.010),
        entry("g", "numpy", "peer", 0.030),
        entry("g", "sample", "peer", 0.002, scale=50.0),
        entry("h", "factorcore", "factorcore", 0.004),
        entry("h", "scipy", "peer", 0.002),
    ]
}


def test_speedups_scale_sampled_peers():
    got = {(r.group, r.peer): r.speedup for r in ratios.ratios(RESULTS)}
    assert got == {("g", "numpy"): 3.0, ("g", "sample"): 10.0, ("h", "scipy"): 0.5}


def test_check_fails_only_below_the_margin(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps(RESULTS))
    baseline = tmp_path / "b.json"
    # numpy lost 40% of a 5x lead (passes at margin 0.5); scipy lost 75% of a 2x lead.
    baseline.write_text(json.dumps({"g :: numpy": 5.0, "g :: sample": 10.0, "h :: scipy": 2.0}))
    args = [str(results), "--baseline", str(baseline), "--check"]
    assert ratios.main(args) == 1
    baseline.write_text(json.dumps({"g :: numpy": 5.0, "g :: sample": 10.0, "h :: scipy": 0.9}))
    assert ratios.main(args) == 0
    assert ratios.main([*args, "--margin", "0.3"]) == 1  # 3x < 0.7 * 5x


def test_check_fails_when_a_baseline_peer_was_not_measured(tmp_path):
    results = tmp_path / "r.json"
    results.write_text(json.dumps(RESULTS))
    baseline = tmp_path / "b.json"
    baseline.write_text(json.dumps({"g :: numpy": 1.0, "g :: gone": 1.0}))
    assert ratios.main([str(results), "--baseline", str(baseline), "--check"]) == 1


def test_readme_splice_replaces_only_marked_sections(tmp_path):
    (tmp_path / "exposures.md").write_text(
        "# Report\n\nintro\n| a | b |\n|---|---|\n| 1 | 2 |\n\nmore\n"
    )
    (tmp_path / "scaling.md").write_text("## Scaling\n\n| n | t |\n")
    text = (
        "top\n<!-- bench:exposures -->\nold\n<!-- /bench:exposures -->\nmiddle\n"
        "<!-- bench:scaling -->old<!-- /bench:scaling -->\n"
        "<!-- bench:missing -->kept<!-- /bench:missing -->\n"
    )
    out, done = readme.splice(text, tmp_path)
    assert done == ["exposures", "scaling"]
    assert "| a | b |\n|---|---|\n| 1 | 2 |\n<!-- /bench:exposures -->" in out
    assert "intro" not in out and "old" not in out
    assert "## Scaling\n\n| n | t |\n<!-- /bench:scaling -->" in out
    assert "<!-- bench:missing -->kept<!-- /bench:missing -->" in out
    assert out.startswith("top\n") and "\nmiddle\n" in out
