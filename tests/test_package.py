"""What a user installs: one version everywhere, typing markers, trustworthy metadata, the
console script, and a core compiled for a portable CPU baseline."""

from __future__ import annotations

import importlib.metadata
import sys
import tomllib
from pathlib import Path

import factorcore

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_single_sourced_from_cargo_toml():
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
    assert factorcore.__version__ == importlib.metadata.version("factorcore") == cargo
    assert f"## [{cargo}]" in (ROOT / "CHANGELOG.md").read_text()


def test_typing_markers_ship_with_the_package():
    package = Path(factorcore.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "_core.pyi").is_file()


def test_metadata():
    meta = importlib.metadata.metadata("factorcore")
    assert meta["License-Expression"] == "MIT"
    assert meta["Requires-Python"] == ">=3.11"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    # numpy and polars are the only unconditional dependencies; plotting is an extra.
    requires = [r.replace('"', "'") for r in meta.get_all("Requires-Dist")]
    unconditional = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0] for r in unconditional) == ["numpy", "polars"]
    assert any(r.startswith("matplotlib") and "extra == 'plot'" in r for r in requires)


def test_console_script_is_installed():
    scripts = Path(sys.executable).parent
    assert (scripts / "factorcore").exists() or (scripts / "factorcore.exe").exists()
