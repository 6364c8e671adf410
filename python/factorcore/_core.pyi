"""Type stubs of the compiled core (src/python.rs). Use the public API in `factorcore`."""

from typing import TypedDict

import numpy as np
import numpy.typing as npt

__all__ = [
    "DtypeError",
    "InternalError",
    "InvalidInputError",
    "NonFiniteError",
    "__version__",
    "brinson",
    "correlation_clusters",
    "diversification",
    "factor_contributions",
    "link",
    "link_sectors",
    "risk_contributions",
    "rolling_ols",
    "rolling_ols_columns",
    "sector_coherence",
]

__version__: str

class InvalidInputError(ValueError):
    """Input values, shapes or parameters that cannot describe a valid problem."""

    # Set by the core for a problem with one row of a long input.
    row: int
    problem: str

class NonFiniteError(InvalidInputError):
    """A +inf or -inf in the data (NaN and null mean missing; infinity is an error)."""

    input: str  # "returns"/"factors" (exposures), "wp"/"wb"/"rp"/"rb"/"ret" (attribution)
    row: int
    column: int

class DtypeError(TypeError):
    """An input of the wrong type or dtype."""

class InternalError(RuntimeError):
    """A bug in factorcore: the core failed an internal check (a Rust panic). Please report it."""

class _RollingOls(TypedDict, total=False):
    coef: npt.NDArray[np.float64]  # (P, T, N)
    tstat: npt.NDArray[np.float64]  # (P, T, N)
    r2: npt.NDArray[np.float64]  # (T, N)
    resid_vol: npt.NDArray[np.float64]  # (T, N)
    n_obs: npt.NDArray[np.uint32]  # (T, N)

def rolling_ols(
    y: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    *,
    window: int | None,
    min_periods: int | None,
    halflife: float | None,
    intercept: bool,
    stats: bool,
    tstats: bool,
) -> _RollingOls: ...
def rolling_ols_columns(
    columns: list[npt.NDArray[np.float64]],
    x: npt.NDArray[np.float64],
    *,
    window: int | None,
    min_periods: int | None,
    halflife: float | None,
    intercept: bool,
    stats: bool,
    tstats: bool,
) -> _RollingOls: ...

_Dates = npt.NDArray[np.int32] | npt.NDArray[np.int64]  # Date or Datetime physical values
_Keys = (
    npt.NDArray[np.uint8] | npt.NDArray[np.uint16] | npt.NDArray[np.uint32] | npt.NDArray[np.uint64]
)  # Enum/Categorical codes or label hashes
_F64 = npt.NDArray[np.float64]

class _Brinson(TypedDict):
    wp: _F64  # (dates, sectors), sectors in order of first appearance
    wb: _F64
    rp: _F64
    rb: _F64
    allocation: _F64
    selection: _F64
    interaction: _F64
    rows: npt.NDArray[np.uint32]  # input rows per cell; 0 = sector absent that date
    sector_rows: npt.NDArray[np.uint64]  # first row of each sector
    date_starts: npt.NDArray[np.uint64]  # first row of each date, then the row count

def brinson(
    dates: _Dates,
    sectors: _Keys,
    assets: _Keys | None,
    wp: _F64,
    wb: _F64,
    rp: _F64,
    rb: _F64,
    *,
    method: str,
    top_down: bool,
    holdings: bool,
) -> _Brinson: ...

class _LinkedSectors(TypedDict):
    sector_rows: npt.NDArray[np.uint64]
    allocation: _F64
    selection: _F64
    interaction: _F64
    total: _F64
    period_rp: _F64
    period_rb: _F64

def link_sectors(
    dates: _Dates,
    sectors: _Keys,
    wp: _F64,
    wb: _F64,
    rp: _F64,
    rb: _F64,
    allocation: _F64,
    selection: _F64,
    interaction: _F64,
    *,
    method: str,
) -> _LinkedSectors: ...
def link(rp: _F64, rb: _F64, effects: _F64, *, method: str) -> _F64: ...

class _FactorContributions(TypedDict):
    rp: _F64
    rb: _F64
    contributions: _F64  # (periods, factors)
    specific: _F64
    unexposed_weight: _F64
    date_starts: npt.NDArray[np.uint64]

def factor_contributions(
    dates: _Dates,
    assets: _Keys,
    wp: _F64,
    wb: _F64 | None,
    ret: _F64,
    betas: list[_F64],
    factor_returns: _F64,
) -> _FactorContributions: ...

class _Diversification(TypedDict):
    end_row: npt.NDArray[np.uint64]
    n_assets: npt.NDArray[np.uint32]
    excluded_weight: _F64
    volatility: _F64
    diversification_ratio: _F64
    effective_n: _F64
    enb_pca: _F64
    enb_mt: _F64
    absorption_ratio: _F64
    avg_correlation: _F64
    not_converged: npt.NDArray[np.bool_]

def diversification(
    columns: list[_F64],
    n_rows: int,
    ends: npt.NDArray[np.uint64],
    weights: _F64 | None,
    *,
    per_window: bool,
    width: int,
    shrinkage: str | None,
    max_iter: int,
) -> _Diversification: ...

class _RiskContributions(TypedDict):
    volatility: _F64
    marginal: _F64
    component: _F64
    percent: _F64

def risk_contributions(
    columns: list[_F64], n_rows: int, weights: _F64, *, shrinkage: str | None
) -> _RiskContributions: ...

class _Clusters(TypedDict):
    assets: npt.NDArray[np.uint64]
    clusters: npt.NDArray[np.uint32]

def correlation_clusters(
    columns: list[_F64], n_rows: int, n_clusters: int, *, linkage: str
) -> _Clusters: ...

class _SectorCoherence(TypedDict):
    window: npt.NDArray[np.uint64]
    sector: npt.NDArray[np.uint32]
    n_assets: npt.NDArray[np.uint32]
    intra_correlation: _F64
    inter_correlation: _F64
    adjusted_rand_index: _F64

def sector_coherence(
    columns: list[_F64],
    n_rows: int,
    ends: npt.NDArray[np.uint64],
    sectors: npt.NDArray[np.uint32],
    *,
    width: int,
    n_clusters: int | None,
    linkage: str,
) -> _SectorCoherence: ...
