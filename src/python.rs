//! The PyO3 layer: borrow NumPy views, allocate the outputs as NumPy arrays, release
//! the GIL while a kernel fills them in place. No maths here.

use numpy::{PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::error::Error;
use crate::exposures::{self, Columns, Panel, RollingOlsOptions, RollingOlsViews};

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

/// Allocates the outputs as NumPy arrays and lets the kernel fill them in place.
fn fit<'py, Y: Panel + Send>(
    py: Python<'py>,
    y: Y,
    x: PyReadonlyArray2<'py, f64>,
    options: RollingOlsOptions,
) -> PyResult<Bound<'py, PyDict>> {
    let x = x.as_array();
    let (t_len, n, p) = (
        y.n_rows(),
        y.n_cols(),
        x.ncols() + usize::from(options.intercept),
    );
    let coef = PyArray3::<f64>::zeros(py, [p, t_len, n], false);
    let tstat = options
        .tstats
        .then(|| PyArray3::<f64>::zeros(py, [p, t_len, n], false));
    let r2 = options
        .stats
        .then(|| PyArray2::<f64>::zeros(py, [t_len, n], false));
    let resid_vol = options
        .stats
        .then(|| PyArray2::<f64>::zeros(py, [t_len, n], false));
    let n_obs = PyArray2::<u32>::zeros(py, [t_len, n], false);
    {
        let mut coef_rw = coef.readwrite();
        let mut tstat_rw = tstat.as_ref().map(|a| a.readwrite());
        let mut r2_rw = r2.as_ref().map(|a| a.readwrite());
        let mut resid_vol_rw = resid_vol.as_ref().map(|a| a.readwrite());
        let mut n_obs_rw = n_obs.readwrite();
        let views = RollingOlsViews {
            coef: coef_rw.as_array_mut(),
            tstat: tstat_rw.as_mut().map(|a| a.as_array_mut()),
            r2: r2_rw.as_mut().map(|a| a.as_array_mut()),
            resid_vol: resid_vol_rw.as_mut().map(|a| a.as_array_mut()),
            n_obs: n_obs_rw.as_array_mut(),
        };
        py.detach(|| exposures::rolling_ols_into(&y, x, &options, views))
            .map_err(|e| to_py_err(py, e))?;
    }
    let out = PyDict::new(py);
    out.set_item("coef", coef)?;
    if let Some(tstat) = tstat {
        out.set_item("tstat", tstat)?;
    }
    if let (Some(r2), Some(resid_vol)) = (r2, resid_vol) {
        out.set_item("r2", r2)?;
        out.set_item("resid_vol", resid_vol)?;
    }
    out.set_item("n_obs", n_obs)?;
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
