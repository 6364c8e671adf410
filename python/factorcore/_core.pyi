"""Type stubs of the compiled core (src/python.rs). Use the public API in `factorcore`."""

from typing import Literal, TypedDict

import numpy as np
import numpy.typing as npt

__version__: str

class InvalidInputError(ValueError):
    """Input values, shapes or parameters that cannot describe a valid problem."""

class NonFiniteError(InvalidInputError):
    """A +inf or -inf in the data (NaN and null mean missing; infinity is an error)."""

    input: Literal["returns", "factors"]
    row: int
    column: int

class DtypeError(TypeError):
    """An input of the wrong type or dtype."""

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
