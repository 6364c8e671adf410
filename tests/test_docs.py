"""The examples in the docstrings and in the README run and print what they say."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import factorcore.attribution
import factorcore.datasets
import factorcore.exposures
import factorcore.risk
import polars as pl
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.parametrize(
    "module", [factorcore.exposures, factorcore.attribution, factorcore.risk, factorcore.datasets]
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0


PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.mark.parametrize(
    "code", PYTHON_BLOCKS, ids=[f"block{i}" for i in range(len(PYTHON_BLOCKS))]
)
def test_every_readme_python_block_runs(code):
    exec(code, {})


def test_readme_holdings_periods_example_links_to_the_compounded_excess():
    code = re.search(
        r"return compounds over the period.\n\n```python\n(.*?)```", README.read_text(), re.S
    )
    assert code is not None
    namespace: dict = {}
    exec(code.group(1), namespace)
    monthly = namespace["monthly"].filter(pl.col("date").dt.year() >= 2025)
    linked = namespace["fc"].link(monthly)
    per_date = monthly.group_by("date").agg(
        rp=(pl.col("wp") * pl.col("rp")).sum(), rb=(pl.col("wb") * pl.col("rb")).sum()
    )
    compounded = (1 + per_date["rp"]).product() - (1 + per_date["rb"]).product()
    assert abs(linked["total"].sum() - compounded) < 1e-12


def test_readme_attribution_example_runs():
    code = re.search(r"## Sector attribution\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    namespace: dict = {}
    exec(code.group(1), namespace)  # prints the linked table
    linked = namespace["fc"].link(namespace["effects"], method="carino")
    data = namespace["data"]
    # Linked totals add up to the compounded portfolio minus benchmark return.
    per_date = data.group_by("date").agg(
        rp=(pl.col("wp") * pl.col("rp")).sum(), rb=(pl.col("wb") * pl.col("rb")).sum()
    )
    compounded = (1 + per_date["rp"]).product() - (1 + per_date["rb"]).product()
    assert abs(linked["total"].sum() - compounded) < 1e-15


def test_readme_diversification_example_runs():
    code = re.search(r"## Diversification\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    namespace: dict = {}
    exec(code.group(1), namespace)  # prints the three tables
    risk, scores = namespace["risk"], namespace["scores"]
    assert abs(risk["percent"].sum() - 1.0) < 1e-12
    # Entropy of the risk shares over the holdings: at least one bet, at most one per holding.
    assert scores["enb_mt"].is_between(1 - 1e-9, scores["n_assets"].cast(pl.Float64)).all()
    assert namespace["coherence"]["adjusted_rand_index"].is_between(-1, 1).all()
