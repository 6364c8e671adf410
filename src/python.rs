//! The PyO3 layer: borrow NumPy views, release the GIL, call a kernel, hand the
//! owned result arrays to NumPy without copying. No maths here.

use numpy::{IntoPyArray, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::Error;
use crate::exposures::{self, Columns, Panel, RollingOlsOptions};

create_exception!(
    factorcore,
    InvalidInputError,
    PyValueError,
    "Input values, shapes or parameters that cannot describe a valid problem."
);
create_exception!(
    factorcore,
    NonFiniteError,
    InvalidInputError,
    "A +inf or -inf in the data (NaN and null mean missing; infinity is an error)."
);
create_exception!(
    factorcore,
    DtypeError,
    PyTypeError,
    "An input of the wrong type or dtype."
);

fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    match error {
        Error::InvalidInput(message) => InvalidInputError::new_err(message),
        Error::NonFinite { input, row, column } => {
            let err = NonFiniteError::new_err(Error::NonFinite { input, row, column }.to_string());
            // The Python layer turns row/column positions into dates and names.
            let value = err.value(py);
            let _ = value.setattr("input", input);
            let _ = value.setattr("row", row);
            let _ = value.setattr("column", column);
            err
        }
    }
}

fn fit<'py, Y: Panel + Send>(
    py: Python<'py>,
    y: Y,
    x: PyReadonlyArray2<'py, f64>,
    options: RollingOlsOptions,
) -> PyResult<Bound<'py, PyDict>> {
    let x = x.as_array();
    let result = py
        .detach(|| exposures::rolling_ols(&y, x, &options))
        .map_err(|e| to_py_err(py, e))?;
    let out = PyDict::new(py);
    out.set_item("coef", result.coef.into_pyarray(py))?;
    if let Some(tstat) = result.tstat {
        out.set_item("tstat", tstat.into_pyarray(py))?;
    }
    if let Some(r2) = result.r2 {
        out.set_item("r2", r2.into_pyarray(py))?;
    }
    if let Some(resid_vol) = result.resid_vol {
        out.set_item("resid_vol", resid_vol.into_pyarray(py))?;
    }
    out.set_item("n_obs", result.n_obs.into_pyarray(py))?;
    Ok(out)
}

/// Rolling least squares of a (T, N) array on (T, K) factors.
/// Returns coef/tstat as (P, T, N) and r2/resid_vol/n_obs as (T, N).
#[pyfunction]
#[pyo3(signature = (y, x, *, window, min_periods, halflife, intercept, stats, tstats))]
#[allow(clippy::too_many_arguments)]
fn rolling_ols<'py>(
    py: Python<'py>,
    y: PyReadonlyArray2<'py, f64>,
    x: PyReadonlyArray2<'py, f64>,
    window: Option<usize>,
    min_periods: Option<usize>,
    halflife: Option<f64>,
    intercept: bool,
    stats: bool,
    tstats: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = RollingOlsOptions {
        window,
        min_periods,
        halflife,
        intercept,
        stats,
        tstats,
    };
    fit(py, y.as_array(), x, options)
}

/// The same on a list of contiguous (T,) return columns, borrowed without copying.
#[pyfunction]
#[pyo3(signature = (columns, x, *, window, min_periods, halflife, intercept, stats, tstats))]
#[allow(clippy::too_many_arguments)]
fn rolling_ols_columns<'py>(
    py: Python<'py>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    x: PyReadonlyArray2<'py, f64>,
    window: Option<usize>,
    min_periods: Option<usize>,
    halflife: Option<f64>,
    intercept: bool,
    stats: bool,
    tstats: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let slices = columns
        .iter()
        .enumerate()
        .map(|(j, c)| {
            c.as_slice().map_err(|_| {
                InvalidInputError::new_err(format!("return column {j} is not contiguous"))
            })
        })
        .collect::<PyResult<Vec<&[f64]>>>()?;
    let panel = Columns::new(slices, x.as_array().nrows()).map_err(|e| to_py_err(py, e))?;
    let options = RollingOlsOptions {
        window,
        min_periods,
        halflife,
        intercept,
        stats,
        tstats,
    };
    fit(py, panel, x, options)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("DtypeError", py.get_type::<DtypeError>())?;
    m.add_function(wrap_pyfunction!(rolling_ols, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_ols_columns, m)?)?;
    Ok(())
}
