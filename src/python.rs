//! The PyO3 layer: borrow NumPy views, allocate the outputs as NumPy arrays, run the
//! kernel with the GIL released (see [`run`]: Ctrl-C stops it, a panic becomes an
//! `InternalError`). No maths here.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use ndarray::{Array2, Dimension};
use numpy::{
    IntoPyArray, PyArray, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyKeyboardInterrupt, PyMemoryError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyCapsuleMethods, PyDict, PyTuple};

use crate::brinson::{self, BrinsonInput, BrinsonMethod, BrinsonOptions, Side};
use crate::clusters::{self, Linkage};
use crate::diversification::{self, DiversificationOptions, Shrinkage, Weights};
use crate::error::{bytes_text, try_filled, Error};
use crate::exposures::{self, Columns, Panel, RollingOlsOptions, RollingOlsViews};
use crate::factor_attribution::{self, FactorInput};
use crate::groups::{self, Keys};
use crate::interrupt::{on_pool, Interrupt};
use crate::linking::{self, LinkMethod, Linking, SectorRows};
use crate::views::StringViews;

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
create_exception!(
    factorcore,
    InternalError,
    PyRuntimeError,
    "A bug in factorcore: the core failed an internal check (a Rust panic). Please report it."
);

fn to_py_err(py: Python<'_>, error: Error) -> PyErr {
    match error {
        Error::InvalidInput(message) => InvalidInputError::new_err(message),
        Error::NonFinite { input, row, column } | Error::OutOfRange { input, row, column } => {
            let message = error.to_string();
            let err = if matches!(error, Error::NonFinite { .. }) {
                NonFiniteError::new_err(message)
            } else {
                InvalidInputError::new_err(message)
            };
            // The Python layer turns row/column positions into dates and names.
            let value = err.value(py);
            let _ = value.setattr("input", input);
            let _ = value.setattr("row", row);
            let _ = value.setattr("column", column);
            err
        }
        Error::AtRow { row, problem } => {
            let err = InvalidInputError::new_err(format!("row {row}: {problem}"));
            // The Python layer names the row's date and keys and re-raises.
            let value = err.value(py);
            let _ = value.setattr("row", row);
            let _ = value.setattr("problem", problem);
            err
        }
        Error::Interrupted => PyKeyboardInterrupt::new_err("factorcore call interrupted"),
        Error::OutOfMemory { .. } => PyMemoryError::new_err(error.to_string()),
    }
}

/// How long the calling thread waits for a kernel before it looks for signals again.
const SIGNAL_SLICE: Duration = Duration::from_millis(20);

/// Runs a kernel with the GIL released, on the rayon pool, while the calling thread
/// waits in short slices and checks for signals between them (re-attaching briefly).
/// When a signal handler raises (Ctrl-C: KeyboardInterrupt), the call's [`Interrupt`]
/// is set, the kernel stops at its next check, and once it has returned (no worker is
/// left running) that exception is raised. A panic in the kernel, rayon workers
/// included, becomes an [`InternalError`] naming `name`.
fn run<T: Send>(
    py: Python<'_>,
    name: &str,
    kernel: impl FnOnce(&Interrupt) -> Result<T, Error> + Send,
) -> PyResult<T> {
    let interrupt = Interrupt::new();
    let (outcome, signal) = py.detach(|| {
        let interrupt = &interrupt;
        let work = move || panic::catch_unwind(AssertUnwindSafe(move || kernel(interrupt)));
        on_pool(work, |job| {
            let mut signal = None;
            loop {
                match job.wait(SIGNAL_SLICE) {
                    Some(outcome) => {
                        let lost = || Box::new("the kernel ended without a result") as _;
                        return (outcome.unwrap_or_else(|| Err(lost())), signal);
                    }
                    None if signal.is_none() => {
                        if let Err(err) = Python::attach(|py| py.check_signals()) {
                            interrupt.set();
                            signal = Some(err);
                        }
                    }
                    None => {}
                }
            }
        })
    });
    // The handler's exception, whatever the kernel managed to do meanwhile.
    if let Some(err) = signal {
        return Err(err);
    }
    match outcome {
        Ok(result) => result.map_err(|e| to_py_err(py, e)),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(InternalError::new_err(format!(
                "internal error in factorcore's {name} (please report it): {message}"
            )))
        }
    }
}

/// An uninitialised NumPy array for output `name` of `binding`, which the kernel writes
/// in full (zeroing it first would write every page twice), or a MemoryError that names
/// its size and the size of all outputs (`total_bytes`) when it cannot be allocated
/// (`PyArray::zeros` would panic instead).
fn uninit<'py, T: numpy::Element, D: Dimension>(
    py: Python<'py>,
    (binding, name): (&str, &str),
    shape: &[usize],
    total_bytes: Option<usize>,
) -> PyResult<Bound<'py, PyArray<T, D>>> {
    let numpy = py.import("numpy")?;
    let dims = PyTuple::new(py, shape)?;
    match numpy.call_method1("empty", (dims, numpy::dtype::<T>(py))) {
        Ok(array) => Ok(array.cast_into::<PyArray<T, D>>()?),
        Err(err) if err.is_instance_of::<PyMemoryError>(py) => {
            let bytes = shape
                .iter()
                .try_fold(std::mem::size_of::<T>(), |b, &d| b.checked_mul(d));
            let refused = PyMemoryError::new_err(format!(
                "{binding}: could not allocate {} for the {name} output {shape:?}; all outputs \
                 together need {}. Pass fewer dates or assets per call",
                bytes_text(bytes),
                bytes_text(total_bytes),
            ));
            refused.set_cause(py, Some(err));
            Err(refused)
        }
        Err(err) => Err(err),
    }
}

/// Allocates the outputs as NumPy arrays and lets the kernel fill them in place (every
/// entry: see the kernel's test `every_output_entry_is_written`).
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
    // (P, T, N) float64 planes for coef (and tstat), (T, N) for the rest.
    let plane = t_len.checked_mul(n);
    let f64_planes = p * (1 + usize::from(options.tstats)) + 2 * usize::from(options.stats);
    let total_bytes = plane
        .and_then(|plane| plane.checked_mul(8 * f64_planes + 4))
        .filter(|&b| b <= isize::MAX as usize);
    let name = |output| ("rolling_ols", output);
    let coef = uninit::<f64, _>(py, name("coef"), &[p, t_len, n], total_bytes)?;
    let tstat = options
        .tstats
        .then(|| uninit::<f64, _>(py, name("tstat"), &[p, t_len, n], total_bytes))
        .transpose()?;
    let r2 = options
        .stats
        .then(|| uninit::<f64, _>(py, name("r2"), &[t_len, n], total_bytes))
        .transpose()?;
    let resid_vol = options
        .stats
        .then(|| uninit::<f64, _>(py, name("resid_vol"), &[t_len, n], total_bytes))
        .transpose()?;
    let n_obs = uninit::<u32, _>(py, name("n_obs"), &[t_len, n], total_bytes)?;
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
        run(py, "rolling_ols", |stop| {
            exposures::rolling_ols_into(&y, x, &options, views, stop)
        })?;
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

/// A date column's physical values: days (Date) or time units (Datetime).
#[derive(FromPyObject)]
enum DateColumn<'py> {
    Days(PyReadonlyArray1<'py, i32>),
    Units(PyReadonlyArray1<'py, i64>),
}

/// A label column: Enum/Categorical physical codes, integer bits, or an Arrow C stream
/// (PyCapsule) of String labels, read in place.
#[derive(FromPyObject)]
enum KeyColumn<'py> {
    U8(PyReadonlyArray1<'py, u8>),
    U16(PyReadonlyArray1<'py, u16>),
    U32(PyReadonlyArray1<'py, u32>),
    U64(PyReadonlyArray1<'py, u64>),
    Strings(Bound<'py, PyCapsule>),
}

fn slice<'a, T: numpy::Element>(array: &'a PyReadonlyArray1<'_, T>) -> PyResult<&'a [T]> {
    array
        .as_slice()
        .map_err(|_| InvalidInputError::new_err("a column is not contiguous"))
}

/// A key column ready to be borrowed as `Keys` (string views imported from the stream).
struct KeySource<'py> {
    column: KeyColumn<'py>,
    views: Option<StringViews>,
}

impl<'py> KeySource<'py> {
    fn new(column: KeyColumn<'py>) -> PyResult<Self> {
        let views = match &column {
            KeyColumn::Strings(capsule) => {
                let stream = capsule.pointer_checked(Some(c"arrow_array_stream"))?;
                // The stream stays owned by the capsule; the array taken from it is ours.
                let views = unsafe { StringViews::from_stream(stream.as_ptr().cast()) };
                Some(views.map_err(|e| to_py_err(capsule.py(), e))?)
            }
            _ => None,
        };
        Ok(KeySource { column, views })
    }

    fn keys(&self) -> PyResult<Keys<'_>> {
        Ok(match (&self.column, &self.views) {
            (KeyColumn::U8(a), _) => Keys::U8(slice(a)?),
            (KeyColumn::U16(a), _) => Keys::U16(slice(a)?),
            (KeyColumn::U32(a), _) => Keys::U32(slice(a)?),
            (KeyColumn::U64(a), _) => Keys::U64(slice(a)?),
            (KeyColumn::Strings(_), Some(views)) => Keys::Views(views),
            (KeyColumn::Strings(_), None) => unreachable!("imported in KeySource::new"),
        })
    }
}

impl DateColumn<'_> {
    /// Start of each date's rows; the Python layer sorts the rows first.
    fn runs(&self) -> PyResult<Vec<usize>> {
        match self {
            DateColumn::Days(a) => groups::date_runs(slice(a)?),
            DateColumn::Units(a) => groups::date_runs(slice(a)?),
        }
        .ok_or_else(|| InvalidInputError::new_err("rows must be sorted by date"))
    }
}

/// A row-major (rows, columns) array of `values`.
fn grid<T>(shape: (usize, usize), values: Vec<T>) -> PyResult<Array2<T>> {
    Array2::from_shape_vec(shape, values).map_err(|e| {
        InternalError::new_err(format!("internal error in factorcore: output shape: {e}"))
    })
}

fn usizes(py: Python<'_>, values: Vec<usize>) -> Bound<'_, numpy::PyArray1<u64>> {
    values
        .into_iter()
        .map(|v| v as u64)
        .collect::<Vec<_>>()
        .into_pyarray(py)
}

/// Single-period Brinson effects per (date, sector) from sector- or holdings-level rows
/// sorted by date. Returns (date × sector) arrays in sector code order.
#[pyfunction]
#[pyo3(name = "brinson", signature = (dates, sectors, assets, wp, wb, rp, rb, *, method, top_down, holdings))]
#[allow(clippy::too_many_arguments)]
fn brinson_effects<'py>(
    py: Python<'py>,
    dates: DateColumn<'py>,
    sectors: KeyColumn<'py>,
    assets: Option<KeyColumn<'py>>,
    wp: PyReadonlyArray1<'py, f64>,
    wb: PyReadonlyArray1<'py, f64>,
    rp: PyReadonlyArray1<'py, f64>,
    rb: PyReadonlyArray1<'py, f64>,
    method: &str,
    top_down: bool,
    holdings: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let method = match method {
        "bf" => BrinsonMethod::Fachler,
        "bhb" => BrinsonMethod::HoodBeebower,
        "geometric" => BrinsonMethod::Geometric,
        other => {
            return Err(InvalidInputError::new_err(format!(
                "unknown method {other:?}"
            )))
        }
    };
    let names = if holdings {
        [("wp", "ret"), ("wb", "ret")]
    } else {
        [("wp", "rp"), ("wb", "rb")]
    };
    let date_starts = dates.runs()?;
    let sectors = KeySource::new(sectors)?;
    let assets = assets.map(KeySource::new).transpose()?;
    let input = BrinsonInput {
        date_starts: &date_starts,
        sectors: sectors.keys()?,
        assets: assets.as_ref().map(KeySource::keys).transpose()?,
        portfolio: Side {
            weight: slice(&wp)?,
            ret: slice(&rp)?,
            names: names[0],
        },
        benchmark: Side {
            weight: slice(&wb)?,
            ret: slice(&rb)?,
            names: names[1],
        },
    };
    let options = BrinsonOptions { method, top_down };
    let result = run(py, "brinson", |stop| {
        brinson::brinson(&input, options, stop)
    })?;
    let shape = (date_starts.len() - 1, result.n_sectors);
    let out = PyDict::new(py);
    let column = |f: fn(&brinson::SectorCell) -> f64| -> PyResult<_> {
        // Each column is as large as the (date x sector) grid: let Ctrl-C in between.
        py.check_signals()?;
        let mut values = try_filled(result.cells.len(), 0.0, "a brinson output column")
            .map_err(|e| to_py_err(py, e))?;
        values
            .iter_mut()
            .zip(&result.cells)
            .for_each(|(v, c)| *v = f(c));
        Ok(grid(shape, values)?.into_pyarray(py))
    };
    out.set_item("wp", column(|c| c.wp)?)?;
    out.set_item("wb", column(|c| c.wb)?)?;
    out.set_item("rp", column(|c| c.rp)?)?;
    out.set_item("rb", column(|c| c.rb)?)?;
    out.set_item("allocation", column(|c| c.allocation)?)?;
    out.set_item("selection", column(|c| c.selection)?)?;
    out.set_item("interaction", column(|c| c.interaction)?)?;
    let mut rows = try_filled(result.cells.len(), 0u32, "brinson's rows output")
        .map_err(|e| to_py_err(py, e))?;
    rows.iter_mut()
        .zip(&result.cells)
        .for_each(|(r, c)| *r = c.rows);
    out.set_item("rows", grid(shape, rows)?.into_pyarray(py))?;
    out.set_item("sector_rows", usizes(py, result.sector_rows))?;
    out.set_item("date_starts", usizes(py, date_starts))?;
    Ok(out)
}

fn link_method(method: &str) -> PyResult<LinkMethod> {
    match method {
        "carino" => Ok(LinkMethod::Carino),
        "menchero" => Ok(LinkMethod::Menchero),
        "grap" => Ok(LinkMethod::Grap),
        "frongello" => Ok(LinkMethod::Frongello),
        other => Err(InvalidInputError::new_err(format!(
            "unknown linking method {other:?}"
        ))),
    }
}

/// Links a Brinson effects table (rows sorted by date) per sector.
#[pyfunction]
#[pyo3(signature = (dates, sectors, wp, wb, rp, rb, allocation, selection, interaction, *, method))]
#[allow(clippy::too_many_arguments)]
fn link_sectors<'py>(
    py: Python<'py>,
    dates: DateColumn<'py>,
    sectors: KeyColumn<'py>,
    wp: PyReadonlyArray1<'py, f64>,
    wb: PyReadonlyArray1<'py, f64>,
    rp: PyReadonlyArray1<'py, f64>,
    rb: PyReadonlyArray1<'py, f64>,
    allocation: PyReadonlyArray1<'py, f64>,
    selection: PyReadonlyArray1<'py, f64>,
    interaction: PyReadonlyArray1<'py, f64>,
    method: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let linking = match method {
        "geometric" => Linking::Geometric,
        other => Linking::Arithmetic(link_method(other)?),
    };
    let date_starts = dates.runs()?;
    let sectors = KeySource::new(sectors)?;
    let rows = SectorRows {
        date_starts: &date_starts,
        sectors: sectors.keys()?,
        wp: slice(&wp)?,
        wb: slice(&wb)?,
        rp: slice(&rp)?,
        rb: slice(&rb)?,
        allocation: slice(&allocation)?,
        selection: slice(&selection)?,
        interaction: slice(&interaction)?,
    };
    let linked = run(py, "link", |_| linking::link_sectors(&rows, linking))?;
    let out = PyDict::new(py);
    out.set_item("sector_rows", usizes(py, linked.sector_rows))?;
    out.set_item("allocation", linked.allocation.into_pyarray(py))?;
    out.set_item("selection", linked.selection.into_pyarray(py))?;
    out.set_item("interaction", linked.interaction.into_pyarray(py))?;
    out.set_item("total", linked.total.into_pyarray(py))?;
    out.set_item("period_rp", linked.period_rp.into_pyarray(py))?;
    out.set_item("period_rb", linked.period_rb.into_pyarray(py))?;
    Ok(out)
}

/// Links per-period effects (periods × effects) that add up to rp - rb.
#[pyfunction]
#[pyo3(signature = (rp, rb, effects, *, method))]
fn link<'py>(
    py: Python<'py>,
    rp: PyReadonlyArray1<'py, f64>,
    rb: PyReadonlyArray1<'py, f64>,
    effects: PyReadonlyArray2<'py, f64>,
    method: &str,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let method = link_method(method)?;
    let n_effects = effects.shape()[1];
    let effects = effects
        .as_slice()
        .map_err(|_| InvalidInputError::new_err("effects must be C-contiguous"))?;
    let (rp, rb) = (slice(&rp)?, slice(&rb)?);
    let linked = run(py, "link", |_| {
        linking::link(rp, rb, effects, n_effects, method)
    })?;
    Ok(linked.into_pyarray(py))
}

/// Factor contributions per date from holdings rows sorted by date and aligned with
/// asset returns and prior exposures; checks that no asset repeats on a date.
#[pyfunction]
#[pyo3(signature = (dates, assets, wp, wb, ret, betas, factor_returns))]
#[allow(clippy::too_many_arguments)]
fn factor_contributions<'py>(
    py: Python<'py>,
    dates: DateColumn<'py>,
    assets: KeyColumn<'py>,
    wp: PyReadonlyArray1<'py, f64>,
    wb: Option<PyReadonlyArray1<'py, f64>>,
    ret: PyReadonlyArray1<'py, f64>,
    betas: Vec<PyReadonlyArray1<'py, f64>>,
    factor_returns: PyReadonlyArray2<'py, f64>,
) -> PyResult<Bound<'py, PyDict>> {
    let date_starts = dates.runs()?;
    let betas = betas.iter().map(slice).collect::<PyResult<Vec<_>>>()?;
    let assets = KeySource::new(assets)?;
    let assets = assets.keys()?;
    let input = FactorInput {
        date_starts: &date_starts,
        wp: slice(&wp)?,
        wb: wb.as_ref().map(slice).transpose()?,
        ret: slice(&ret)?,
        betas: &betas,
        factor_returns: factor_returns
            .as_slice()
            .map_err(|_| InvalidInputError::new_err("factor returns must be C-contiguous"))?,
    };
    let result = run(py, "factor_attribution", |_| {
        groups::first_repeat(&date_starts, assets, "asset")?;
        factor_attribution::factor_contributions(&input)
    })?;
    let periods = date_starts.len() - 1;
    let contributions = grid((periods, betas.len()), result.contributions)?;
    let out = PyDict::new(py);
    out.set_item("rp", result.rp.into_pyarray(py))?;
    out.set_item("rb", result.rb.into_pyarray(py))?;
    out.set_item("contributions", contributions.into_pyarray(py))?;
    out.set_item("specific", result.specific.into_pyarray(py))?;
    out.set_item("unexposed_weight", result.unexposed_weight.into_pyarray(py))?;
    out.set_item("date_starts", usizes(py, date_starts))?;
    Ok(out)
}

fn shrinkage_of(name: Option<&str>) -> PyResult<Shrinkage> {
    match name {
        None => Ok(Shrinkage::None),
        Some("ledoit-wolf") => Ok(Shrinkage::LedoitWolf),
        Some(other) => Err(InvalidInputError::new_err(format!(
            "unknown shrinkage {other:?}; expected None or \"ledoit-wolf\""
        ))),
    }
}

/// Diversification scores of the windows of `width` rows ending at the rows `ends` of
/// contiguous (T,) return columns. `weights` is None (equal weight), one weight per
/// asset, or (with `per_window`) a C-contiguous (windows x assets) array.
#[pyfunction]
#[pyo3(name = "diversification", signature = (columns, n_rows, ends, weights, *, per_window, width, shrinkage, max_iter))]
#[allow(clippy::too_many_arguments)]
fn diversification_scores<'py>(
    py: Python<'py>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    n_rows: usize,
    ends: PyReadonlyArray1<'py, u64>,
    weights: Option<numpy::PyReadonlyArrayDyn<'py, f64>>,
    per_window: bool,
    width: usize,
    shrinkage: Option<&str>,
    max_iter: usize,
) -> PyResult<Bound<'py, PyDict>> {
    let columns = columns.iter().map(slice).collect::<PyResult<Vec<_>>>()?;
    let weight_values = weights
        .as_ref()
        .map(|w| {
            w.as_slice()
                .map_err(|_| InvalidInputError::new_err("weights must be C-contiguous"))
        })
        .transpose()?;
    let weights = match (weight_values, per_window) {
        (None, _) => Weights::Equal,
        (Some(w), false) => Weights::Static(w),
        (Some(w), true) => Weights::PerWindow(w),
    };
    let ends: Vec<usize> = slice(&ends)?.iter().map(|&e| e as usize).collect();
    let options = DiversificationOptions {
        width,
        shrinkage: shrinkage_of(shrinkage)?,
        max_iter,
    };
    let scores = run(py, "diversification", |stop| {
        diversification::diversification(&columns, n_rows, &ends, weights, &options, stop)
    })?;
    let out = PyDict::new(py);
    out.set_item("end_row", usizes(py, scores.end_row))?;
    out.set_item("n_assets", scores.n_assets.into_pyarray(py))?;
    out.set_item("excluded_weight", scores.excluded_weight.into_pyarray(py))?;
    out.set_item("volatility", scores.volatility.into_pyarray(py))?;
    out.set_item(
        "diversification_ratio",
        scores.diversification_ratio.into_pyarray(py),
    )?;
    out.set_item("effective_n", scores.effective_n.into_pyarray(py))?;
    out.set_item("enb_pca", scores.enb_pca.into_pyarray(py))?;
    out.set_item("enb_mt", scores.enb_mt.into_pyarray(py))?;
    out.set_item("absorption_ratio", scores.absorption_ratio.into_pyarray(py))?;
    out.set_item("avg_correlation", scores.avg_correlation.into_pyarray(py))?;
    out.set_item("not_converged", scores.not_converged.into_pyarray(py))?;
    Ok(out)
}

/// Euler risk contributions over all rows of contiguous (T,) return columns without
/// missing values.
#[pyfunction]
#[pyo3(signature = (columns, n_rows, weights, *, shrinkage))]
fn risk_contributions<'py>(
    py: Python<'py>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    n_rows: usize,
    weights: PyReadonlyArray1<'py, f64>,
    shrinkage: Option<&str>,
) -> PyResult<Bound<'py, PyDict>> {
    let columns = columns.iter().map(slice).collect::<PyResult<Vec<_>>>()?;
    let weights = slice(&weights)?;
    let shrinkage = shrinkage_of(shrinkage)?;
    let result = run(py, "risk_contributions", |_| {
        diversification::risk_contributions(&columns, n_rows, weights, shrinkage)
    })?;
    let out = PyDict::new(py);
    out.set_item("volatility", result.volatility.into_pyarray(py))?;
    out.set_item("marginal", result.marginal.into_pyarray(py))?;
    out.set_item("component", result.component.into_pyarray(py))?;
    out.set_item("percent", result.percent.into_pyarray(py))?;
    Ok(out)
}

fn linkage_of(name: &str) -> PyResult<Linkage> {
    match name {
        "single" => Ok(Linkage::Single),
        "complete" => Ok(Linkage::Complete),
        "average" => Ok(Linkage::Average),
        "ward" => Ok(Linkage::Ward),
        other => Err(InvalidInputError::new_err(format!(
            "unknown linkage {other:?}; expected \"single\", \"complete\", \"average\" or \"ward\""
        ))),
    }
}

/// Flat correlation clusters over all rows: the clustered column indices and their
/// labels 0..k.
#[pyfunction]
#[pyo3(signature = (columns, n_rows, n_clusters, *, linkage))]
fn correlation_clusters<'py>(
    py: Python<'py>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    n_rows: usize,
    n_clusters: usize,
    linkage: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let columns = columns.iter().map(slice).collect::<PyResult<Vec<_>>>()?;
    let linkage = linkage_of(linkage)?;
    let (assets, labels) = run(py, "correlation_clusters", |stop| {
        clusters::correlation_clusters(&columns, n_rows, n_clusters, linkage, stop)
    })?;
    let out = PyDict::new(py);
    out.set_item("assets", usizes(py, assets))?;
    out.set_item("clusters", labels.into_pyarray(py))?;
    Ok(out)
}

/// Per window and sector code: n_assets, intra/inter correlation and the window's ARI.
#[pyfunction]
#[pyo3(signature = (columns, n_rows, ends, sectors, *, width, n_clusters, linkage))]
#[allow(clippy::too_many_arguments)]
fn sector_coherence<'py>(
    py: Python<'py>,
    columns: Vec<PyReadonlyArray1<'py, f64>>,
    n_rows: usize,
    ends: PyReadonlyArray1<'py, u64>,
    sectors: PyReadonlyArray1<'py, u32>,
    width: usize,
    n_clusters: Option<usize>,
    linkage: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let columns = columns.iter().map(slice).collect::<PyResult<Vec<_>>>()?;
    let ends: Vec<usize> = slice(&ends)?.iter().map(|&e| e as usize).collect();
    let sectors = slice(&sectors)?;
    let linkage = linkage_of(linkage)?;
    let result = run(py, "sector_coherence", |stop| {
        clusters::sector_coherence(
            &columns, n_rows, &ends, width, sectors, n_clusters, linkage, stop,
        )
    })?;
    let out = PyDict::new(py);
    out.set_item("window", usizes(py, result.window))?;
    out.set_item("sector", result.sector.into_pyarray(py))?;
    out.set_item("n_assets", result.n_assets.into_pyarray(py))?;
    out.set_item(
        "intra_correlation",
        result.intra_correlation.into_pyarray(py),
    )?;
    out.set_item(
        "inter_correlation",
        result.inter_correlation.into_pyarray(py),
    )?;
    out.set_item(
        "adjusted_rand_index",
        result.adjusted_rand_index.into_pyarray(py),
    )?;
    Ok(out)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("NonFiniteError", py.get_type::<NonFiniteError>())?;
    m.add("DtypeError", py.get_type::<DtypeError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    m.add_function(wrap_pyfunction!(rolling_ols, m)?)?;
    m.add_function(wrap_pyfunction!(rolling_ols_columns, m)?)?;
    m.add_function(wrap_pyfunction!(brinson_effects, m)?)?;
    m.add_function(wrap_pyfunction!(link_sectors, m)?)?;
    m.add_function(wrap_pyfunction!(link, m)?)?;
    m.add_function(wrap_pyfunction!(factor_contributions, m)?)?;
    m.add_function(wrap_pyfunction!(diversification_scores, m)?)?;
    m.add_function(wrap_pyfunction!(risk_contributions, m)?)?;
    m.add_function(wrap_pyfunction!(correlation_clusters, m)?)?;
    m.add_function(wrap_pyfunction!(sector_coherence, m)?)?;
    Ok(())
}
