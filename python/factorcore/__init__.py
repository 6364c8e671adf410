"""factorcore: rolling factor exposures, sector attribution and diversification scores
over large return matrices, with a Rust core and a Polars API.

>>> import factorcore as fc
>>> fc.rolling_exposures(returns, factors, window=252)          # doctest: +SKIP
"""

from factorcore._core import __version__
from factorcore.attribution import brinson, factor_attribution, holdings_periods, link
from factorcore.errors import (
    ConvergenceWarning,
    DtypeError,
    InternalError,
    InvalidInputError,
    NonFiniteError,
)
from factorcore.exposures import rolling_exposures, rolling_ols
from factorcore.risk import (
    correlation_clusters,
    diversification,
    factor_bets,
    risk_contributions,
    sector_coherence,
)

__all__ = [
    "ConvergenceWarning",
    "DtypeError",
    "InternalError",
    "InvalidInputError",
    "NonFiniteError",
    "__version__",
    "brinson",
    "correlation_clusters",
    "diversification",
    "factor_attribution",
    "factor_bets",
    "holdings_periods",
    "link",
    "risk_contributions",
    "rolling_exposures",
    "rolling_ols",
    "sector_coherence",
]
