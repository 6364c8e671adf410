//! Rolling and expanding least squares of many assets on one shared factor matrix.
//!
//! Every asset is regressed on the same factors, so for a window the factor
//! cross-product X'WX and its inverse are computed once per date and shared by all
//! assets without missing returns; per asset only X'Wy and y'Wy move, and every
//! statistic (SSR, R², standard errors) follows from those sums. A group of assets in
//! which any asset misses a return carries one X'WX per asset instead and solves all
//! of the group's small systems per window at once.
//!
//! Assets are processed in groups of neighbouring columns ("lanes"), date by date,
//! with each group's sums stored component by component so that the per-date work
//! runs across lanes and vectorises. Groups run in parallel and each writes only its
//! own columns of the outputs. Rolling windows are also cut into stretches of dates,
//! one per thread, each resuming its window sums exactly a block early: the threads
//! then start on different stretches and fill (and have the OS zero) different pages
//! of the freshly allocated outputs, instead of the same pages at the same moments.

use std::ops::Range;

use ndarray::{
    Array2, Array3, ArrayView2, ArrayViewMut, ArrayViewMut2, ArrayViewMut3, Axis, RemoveAxis,
};

use rayon::prelude::*;

use crate::error::{in_range, invalid, range_error, try_filled, Error, Result};
use crate::interrupt::Interrupt;
use crate::linalg::{self, packed_len, LargeSystem};
use crate::memory;
use crate::window::{window_counts, Outer, Span, WindowSums};
use faer::{Accum, MatMut, MatRef, Par};

/// Relative size below which a sum of squares is rounding noise of its parts.
const ROUNDING: f64 = 64.0 * f64::EPSILON;

/// Rows sampled per asset for the median its returns are centred on.
const SHIFT_SAMPLE: usize = 31;

/// Assets per group: wide groups write long runs of each output row and spread each
/// date's fixed costs over more assets, but the window sums of a group with gaps (four
/// buffers of 28 rows of lanes with 5 factors) must still fit in the L2 cache, which
/// they no longer do comfortably at 512 lanes (measured). The pieces of work (groups
/// times stretches of dates) must also be numerous enough to keep every thread busy.
/// With many regressors a lane's sums alone are large: groups are then narrowed so
/// that a group's state stays within [`GROUP_STATE_BYTES`].
fn group_width(n_assets: usize, stretches: usize, p: usize) -> usize {
    let groups = (4 * rayon::current_num_threads()).div_ceil(stretches);
    let width = n_assets.div_ceil(groups).next_multiple_of(8).clamp(8, 384);
    width.min((GROUP_STATE_BYTES / lane_state_bytes(p)).max(1))
}

/// What the scratch memory of a rolling regression holds, and the ways to need less.
const SCRATCH: &str =
    "the factor cross-products of a sweep of dates (regressors^2 each) and the window state of each thread: use fewer factors";

/// The most a group's window state may take when there are many regressors.
const GROUP_STATE_BYTES: usize = 16 << 20;

/// Bytes of window state per lane on the gap path (the larger): seven buffers of
/// P (P + 1) / 2 + P + 1 sums (the window's five, the system and its solve's scratch).
fn lane_state_bytes(p: usize) -> usize {
    7usize
        .saturating_mul(packed_len(p) + p + 1)
        .saturating_mul(std::mem::size_of::<f64>())
}

/// A (rows = dates) x (columns = assets) matrix of returns, NaN meaning missing.
pub trait Panel: Sync {
    fn n_rows(&self) -> usize;
    fn n_cols(&self) -> usize;
    /// Copies rows `first_row..first_row + rows` of columns `first..first + lanes`, less
    /// `shift` (one per column, lanes = shift.len()), into `out`, row-major.
    fn copy_rows(
        &self,
        first_row: usize,
        rows: usize,
        first: usize,
        shift: &[f64],
        out: &mut [f64],
    );
    /// Row `t` of columns `first..first + lanes` as it lies, when it lies contiguous.
    #[inline(always)]
    fn contiguous_row(&self, _t: usize, _first: usize, _lanes: usize) -> Option<&[f64]> {
        None
    }
}

impl Panel for ArrayView2<'_, f64> {
    fn n_rows(&self) -> usize {
        self.nrows()
    }
    fn n_cols(&self) -> usize {
        self.ncols()
    }
    #[inline(always)]
    fn copy_rows(
        &self,
        first_row: usize,
        rows: usize,
        first: usize,
        shift: &[f64],
        out: &mut [f64],
    ) {
        let lanes = shift.len();
        let block = self.slice(ndarray::s![
            first_row..first_row + rows,
            first..first + lanes
        ]);
        for (dst, src) in out.chunks_exact_mut(lanes).zip(block.rows()) {
            let values = dst.iter_mut().zip(shift);
            match src.as_slice() {
                Some(slice) => values.zip(slice).for_each(|((d, c), v)| *d = v - c),
                None => values.zip(src).for_each(|((d, c), v)| *d = v - c),
            }
        }
    }
    #[inline(always)]
    fn contiguous_row(&self, t: usize, first: usize, lanes: usize) -> Option<&[f64]> {
        self.slice(ndarray::s![t, first..first + lanes]).to_slice()
    }
}

/// Asset columns held in separate buffers, e.g. the borrowed columns of a wide frame.
pub struct Columns<'a> {
    columns: Vec<&'a [f64]>,
    n_rows: usize,
}

impl<'a> Columns<'a> {
    /// All columns must have `n_rows` entries.
    pub fn new(columns: Vec<&'a [f64]>, n_rows: usize) -> Result<Self> {
        if let Some(j) = columns.iter().position(|c| c.len() != n_rows) {
            return Err(invalid(format!(
                "return column {j} has {} rows, expected {n_rows}",
                columns[j].len()
            )));
        }
        Ok(Self { columns, n_rows })
    }
}

impl Panel for Columns<'_> {
    fn n_rows(&self) -> usize {
        self.n_rows
    }
    fn n_cols(&self) -> usize {
        self.columns.len()
    }
    #[inline(always)]
    fn copy_rows(
        &self,
        first_row: usize,
        rows: usize,
        first: usize,
        shift: &[f64],
        out: &mut [f64],
    ) {
        let lanes = shift.len();
        // Down each column: contiguous reads, strided writes into a small tile.
        let columns = self.columns[first..first + lanes].iter().zip(shift);
        for (l, (column, c)) in columns.enumerate() {
            let values = &column[first_row..first_row + rows];
            for (dst, v) in out[l..].iter_mut().step_by(lanes).zip(values) {
                *dst = v - c;
            }
        }
    }
}

/// How to run the regressions (see `factorcore.rolling_ols` for the full contract).
#[derive(Debug, Clone, PartialEq)]
pub struct RollingOlsOptions {
    /// Rows per window; `None` for an expanding window.
    pub window: Option<usize>,
    /// Fewest valid rows a window needs; defaults to `window`, or P + 1 when expanding.
    pub min_periods: Option<usize>,
    /// Half-life in rows of exponentially decaying weights; `None` for equal weights.
    pub halflife: Option<f64>,
    /// Prepend a constant regressor (the alpha).
    pub intercept: bool,
    /// Also compute r2 and resid_vol.
    pub stats: bool,
    /// Also compute t-statistics of the coefficients.
    pub tstats: bool,
}

impl Default for RollingOlsOptions {
    fn default() -> Self {
        Self {
            window: None,
            min_periods: None,
            halflife: None,
            intercept: true,
            stats: true,
            tstats: false,
        }
    }
}

/// Results laid out so that each statistic is one contiguous (dates x assets) plane.
#[derive(Debug, Clone)]
pub struct RollingOls {
    /// `coef[[k, t, j]]`: coefficient `k` (alpha first when there is an intercept) of
    /// asset `j` in the window ending at date `t`.
    pub coef: Array3<f64>,
    /// Same layout as `coef`, when asked for.
    pub tstat: Option<Array3<f64>>,
    /// (dates x assets), when `stats`: centred R² with an intercept, uncentred without.
    pub r2: Option<Array2<f64>>,
    /// (dates x assets), when `stats`: sqrt(SSR / (n - P)).
    pub resid_vol: Option<Array2<f64>>,
    /// (dates x assets): valid rows in each window.
    pub n_obs: Array2<u32>,
}

/// Output buffers for [`rolling_ols_into`], shaped like the fields of [`RollingOls`]
/// (P = regressors, T = dates, N = assets). Leave out what is not wanted.
pub struct RollingOlsViews<'a> {
    /// (P, T, N)
    pub coef: ArrayViewMut3<'a, f64>,
    /// (P, T, N), required when `options.tstats`.
    pub tstat: Option<ArrayViewMut3<'a, f64>>,
    /// (T, N), required when `options.stats`.
    pub r2: Option<ArrayViewMut2<'a, f64>>,
    /// (T, N), required when `options.stats`.
    pub resid_vol: Option<ArrayViewMut2<'a, f64>>,
    /// (T, N)
    pub n_obs: ArrayViewMut2<'a, u32>,
}

/// Regresses every column of `y` (dates x assets) on the columns of `x` (dates x factors).
pub fn rolling_ols<Y: Panel>(
    y: &Y,
    x: ArrayView2<'_, f64>,
    options: &RollingOlsOptions,
) -> Result<RollingOls> {
    fit(&Problem::new(y, x, options)?, y)
}

/// [`rolling_ols`] once the problem is set.
fn fit<Y: Panel>(problem: &Problem, y: &Y) -> Result<RollingOls> {
    let (t_len, n, p) = (y.n_rows(), y.n_cols(), problem.p);
    let mut coef = Array3::<f64>::zeros((p, t_len, n));
    let mut tstat = problem.tstats.then(|| Array3::<f64>::zeros((p, t_len, n)));
    let mut r2 = problem.stats.then(|| Array2::<f64>::zeros((t_len, n)));
    let mut resid_vol = problem.stats.then(|| Array2::<f64>::zeros((t_len, n)));
    let mut n_obs = Array2::<u32>::zeros((t_len, n));
    let views = RollingOlsViews {
        coef: coef.view_mut(),
        tstat: tstat.as_mut().map(|a| a.view_mut()),
        r2: r2.as_mut().map(|a| a.view_mut()),
        resid_vol: resid_vol.as_mut().map(|a| a.view_mut()),
        n_obs: n_obs.view_mut(),
    };
    fit_into(problem, y, views, &Interrupt::new())?;
    Ok(RollingOls {
        coef,
        tstat,
        r2,
        resid_vol,
        n_obs,
    })
}

/// [`rolling_ols`] writing into buffers the caller owns, e.g. arrays NumPy allocated,
/// which then need no hand-over at all. The buffers must be C-contiguous. Once
/// `interrupt` is set every group stops at its next date and the call returns
/// [`Error::Interrupted`], leaving the buffers partly written.
pub fn rolling_ols_into<Y: Panel>(
    y: &Y,
    x: ArrayView2<'_, f64>,
    options: &RollingOlsOptions,
    out: RollingOlsViews<'_>,
    interrupt: &Interrupt,
) -> Result<()> {
    let problem = Problem::new(y, x, options)?;
    fit_into(&problem, y, out, interrupt)
}

/// The body of [`rolling_ols_into`] once the problem is set.
fn fit_into<Y: Panel>(
    problem: &Problem,
    y: &Y,
    out: RollingOlsViews<'_>,
    interrupt: &Interrupt,
) -> Result<()> {
    let (t_len, n, p) = (problem.t_len, y.n_cols(), problem.p);
    let plane = (t_len, n);
    let shapes_fit = out.coef.dim() == (p, t_len, n)
        && out.n_obs.dim() == plane
        && out.tstat.as_ref().map(|a| a.dim()) == problem.tstats.then_some((p, t_len, n))
        && out.r2.as_ref().map(|a| a.dim()) == problem.stats.then_some(plane)
        && out.resid_vol.as_ref().map(|a| a.dim()) == problem.stats.then_some(plane);
    if !shapes_fit {
        return Err(invalid(format!(
            "output buffers must be shaped ({p}, {t_len}, {n}) and ({t_len}, {n})"
        )));
    }
    // Results are written a row of lanes at a time.
    let contiguous = out.coef.is_standard_layout()
        && out.n_obs.is_standard_layout()
        && out.tstat.as_ref().is_none_or(|a| a.is_standard_layout())
        && out.r2.as_ref().is_none_or(|a| a.is_standard_layout())
        && out
            .resid_vol
            .as_ref()
            .is_none_or(|a| a.is_standard_layout());
    if !contiguous {
        return Err(invalid("output buffers must be C-contiguous"));
    }
    let splits = problem.date_splits(rayon::current_num_threads());
    let lanes = group_width(n, splits.len() + 1, p);
    let n_groups = n.div_ceil(lanes);
    // Refused at once, before any work, when the machine cannot hold it.
    let scratch = problem.scratch_bytes(lanes, rayon::current_num_threads());
    let available = memory::available_bytes();
    if scratch.is_none_or(|bytes| available.is_some_and(|free| bytes > free)) {
        return Err(Error::OutOfMemory {
            what: SCRATCH,
            bytes: scratch,
        });
    }
    let sweeps = problem.sweeps();
    let mut sums = problem.factor_sums();
    let mut facts = vec![WindowFacts::default(); t_len];
    let RollingOlsViews {
        coef,
        tstat,
        r2,
        resid_vol,
        n_obs,
    } = out;
    let groups: Vec<GroupOutput<'_>> = coef
        .into_axis_chunks_iter_mut(Axis(2), lanes)
        .zip(column_chunks(tstat, Axis(2), lanes, n_groups))
        .zip(column_chunks(r2, Axis(1), lanes, n_groups))
        .zip(column_chunks(resid_vol, Axis(1), lanes, n_groups))
        .zip(n_obs.into_axis_chunks_iter_mut(Axis(1), lanes))
        .enumerate()
        .map(
            |(group, ((((coef, tstat), r2), resid_vol), n_obs))| GroupOutput {
                group,
                dates: 0..t_len,
                coef: coef.into_outer_iter_mut().collect(),
                tstat: tstat
                    .map(|t| t.into_outer_iter_mut().collect())
                    .unwrap_or_default(),
                r2,
                resid_vol,
                n_obs,
            },
        )
        .collect();
    // The factors' first sweep is factorised while the groups' returns are scanned and
    // the groups with gaps, which need none of it, are fitted.
    let (first, scanned) = rayon::join(
        || {
            problem.sweep_factors(
                &mut sums,
                &mut facts[..sweeps[0].end],
                sweeps[0].clone(),
                interrupt,
            )
        },
        || -> Result<(Vec<GroupInput<'_, Y>>, Vec<GroupOutput<'_>>)> {
            let scans: Vec<Result<GroupInput<'_, Y>>> = (0..n_groups)
                .into_par_iter()
                .map(|g| {
                    interrupt.check()?;
                    let first = g * lanes;
                    problem.scan_group(y, first, lanes.min(n - first))
                })
                .collect();
            // Report the problem in the leftmost group, whatever order the threads finished in.
            let inputs = scans.into_iter().collect::<Result<Vec<_>>>()?;
            let (gappy, shared): (Vec<_>, Vec<_>) =
                groups.into_iter().partition(|g| inputs[g.group].gappy);
            let pieces = by_date(
                gappy
                    .into_iter()
                    .flat_map(|g| g.split_dates(&splits))
                    .collect(),
            );
            pieces.into_par_iter().for_each(|mut out| {
                if !interrupt.is_set() {
                    problem.fit_gappy(&inputs[out.group], &mut out, interrupt);
                }
            });
            Ok((inputs, shared))
        },
    );
    let (inputs, shared) = scanned?;
    let mut inverses = first?;
    // Groups without gaps read the inverses of one sweep at a time, so their stretches
    // end with the sweeps too.
    let mut cuts = [
        splits.as_slice(),
        &sweeps[1..].iter().map(|s| s.start).collect::<Vec<_>>(),
    ]
    .concat();
    cuts.sort_unstable();
    cuts.dedup();
    let mut rounds: Vec<Vec<GroupOutput<'_>>> = sweeps.iter().map(|_| Vec::new()).collect();
    for piece in shared.into_iter().flat_map(|g| g.split_dates(&cuts)) {
        let round = sweeps.partition_point(|s| s.end <= piece.dates.start);
        rounds[round].push(piece);
    }
    // Each sweep is fitted while the factors of the next are factorised.
    for (round, pieces) in rounds.into_iter().enumerate() {
        let (done, ahead) = facts.split_at_mut(sweeps[round].end);
        let (done, inverses_now) = (&*done, &inverses);
        let (next, ()) = rayon::join(
            || {
                sweeps.get(round + 1).map(|dates| {
                    let rows = &mut ahead[..dates.len()];
                    problem.sweep_factors(&mut sums, rows, dates.clone(), interrupt)
                })
            },
            || {
                by_date(pieces).into_par_iter().for_each(|mut out| {
                    if !interrupt.is_set() {
                        let input = &inputs[out.group];
                        problem.fit_shared(input, done, inverses_now, &mut out, interrupt);
                    }
                })
            },
        );
        interrupt.check()?;
        if let Some(next) = next {
            inverses = next?;
        }
    }
    interrupt.check()
}

/// The validated problem: the design matrix and the facts shared by all assets.
struct Problem {
    t_len: usize,
    /// Regressors including the intercept.
    p: usize,
    span: Span,
    lambda: f64,
    min_periods: u32,
    intercept: bool,
    stats: bool,
    tstats: bool,
    /// (T x P) row-major: [1, x - x_shift] with an intercept, x without.
    design: Vec<f64>,
    /// Rows whose factors are all present.
    row_ok: Vec<bool>,
    /// Such rows per window.
    counts: Vec<u32>,
    /// The most memory the inverses of a sweep of dates may take ([`SWEEP_BYTES`]).
    sweep_bytes: usize,
    /// With an intercept the data are centred before summing, so large common means do
    /// not cancel digits away; slopes, residuals and R² are unchanged and alpha is
    /// shifted back. Centres are medians, which one bad tick cannot move far: a mean
    /// would carry an outlier into every window of the series.
    x_shift: Vec<f64>,
}

/// One lane's system at a time on the gap path, when systems are large.
struct LargeLanes {
    system: LargeSystem,
    /// The lane's packed X'WX, X'Wy (then its solution), and A^-1 (P x P).
    packed: Vec<f64>,
    column: Vec<f64>,
    inverse: Vec<f64>,
}

impl LargeLanes {
    fn new(p: usize) -> Self {
        Self {
            system: LargeSystem::new(p),
            packed: vec![0.0; packed_len(p)],
            column: vec![0.0; p],
            inverse: vec![0.0; p * p],
        }
    }
}

/// Factor-only facts of the window ending at one date, shared by every asset without
/// gaps in it.
#[derive(Debug, Clone, Copy, Default)]
struct WindowFacts {
    /// Whether X'WX was safely invertible.
    ok: bool,
    /// Whether the window tail of X'WX was summed again because a large factor value
    /// had left it (see [`crate::window::LOSS_LIMIT`]): every asset's X'Wy is then
    /// summed again there too.
    tail_rebuilt: bool,
    /// Sum of weights (the intercept's diagonal entry of X'WX).
    weight_sum: f64,
    /// Variance factor of the unshifted alpha: v' (X'WX)^-1 v, v = (1, -x_shift).
    alpha_variance: f64,
    /// The smallest share of a regressor's sum of squares left after projecting out
    /// the others (see [`linalg::cholesky`]): how much rounding the solutions carry.
    least_pivot: f64,
}

/// (X'WX)^-1 of the fitted dates of one sweep, each P x P row-major: a sweep holds at
/// most [`Problem::sweep_len`] of them, so that this memory does not grow with the dates.
struct SweepInverses {
    dates: Range<usize>,
    /// Per date of the sweep, where its inverse starts in `values` (`usize::MAX`: none).
    starts: Vec<usize>,
    values: Vec<f64>,
}

impl SweepInverses {
    /// The inverse at date `t`, which the sweep fitted.
    fn at(&self, t: usize, p: usize) -> &[f64] {
        let start = self.starts[t - self.dates.start];
        &self.values[start..start + p * p]
    }
}

/// The factors' window sums, stepped forward sweep after sweep.
struct FactorSums {
    window: WindowSums,
    /// Entries of the packed X'WX that are sums of squares.
    squares: Vec<usize>,
}

/// One group's returns, borrowed, and how they are centred.
struct GroupInput<'y, Y> {
    y: &'y Y,
    first: usize,
    lanes: usize,
    shift: Vec<f64>,
    /// Whether any asset misses a return on a row whose factors are present.
    gappy: bool,
}

impl<Y: Panel> GroupInput<'_, Y> {
    /// A reader of the group's centred returns.
    fn centred_rows(&self) -> RowTile<'_, Y> {
        RowTile::new(self.y, self.first, &self.shift)
    }

    /// Lane `l`'s centred return on row `r` (NaN where missing).
    fn centred(&self, r: usize, l: usize) -> f64 {
        let mut value = [0.0];
        let shift = &self.shift[l..=l];
        self.y.copy_rows(r, 1, self.first + l, shift, &mut value);
        value[0]
    }
}

/// A few consecutive rows of a group's columns, copied row-major less a shift per
/// column (centred as they are copied). Rows are asked for in increasing order;
/// reading a tile at a time goes down each stored column instead of jumping across
/// hundreds of columns for every row.
struct RowTile<'a, Y> {
    y: &'a Y,
    first: usize,
    shift: &'a [f64],
    start: usize,
    len: usize,
    values: Vec<f64>,
}

impl<'a, Y: Panel> RowTile<'a, Y> {
    const ROWS: usize = 16;

    fn new(y: &'a Y, first: usize, shift: &'a [f64]) -> Self {
        Self {
            y,
            first,
            shift,
            start: 0,
            len: 0,
            values: vec![0.0; Self::ROWS * shift.len()],
        }
    }

    /// Row `t` (NaN where missing), less the shifts.
    #[inline(always)]
    fn row(&mut self, t: usize) -> &[f64] {
        let lanes = self.shift.len();
        if !(self.start..self.start + self.len).contains(&t) {
            self.start = t;
            self.len = Self::ROWS.min(self.y.n_rows() - t);
            let buffer = &mut self.values[..self.len * lanes];
            self.y
                .copy_rows(t, self.len, self.first, self.shift, buffer);
        }
        let offset = (t - self.start) * lanes;
        &self.values[offset..offset + lanes]
    }
}

/// The columns of every output that belong to one group, over one stretch of dates,
/// split into (dates x lanes) planes whose row 0 is the first of `dates`.
struct GroupOutput<'a> {
    group: usize,
    dates: Range<usize>,
    coef: Vec<ArrayViewMut2<'a, f64>>,
    tstat: Vec<ArrayViewMut2<'a, f64>>,
    r2: Option<ArrayViewMut2<'a, f64>>,
    resid_vol: Option<ArrayViewMut2<'a, f64>>,
    n_obs: ArrayViewMut2<'a, u32>,
}

impl GroupOutput<'_> {
    /// The stretch of dates [`dates`](Self::dates) split further at the given dates,
    /// which lie inside it in increasing order.
    fn split_dates(self, at: &[usize]) -> Vec<Self> {
        let bounds: Vec<usize> = std::iter::once(self.dates.start)
            .chain(at.iter().copied())
            .chain(std::iter::once(self.dates.end))
            .collect();
        let lengths: Vec<usize> = bounds.windows(2).map(|b| b[1] - b[0]).collect();
        let mut coef: Vec<_> = self
            .coef
            .into_iter()
            .map(|c| split_rows(c, &lengths))
            .collect();
        let mut tstat: Vec<_> = self
            .tstat
            .into_iter()
            .map(|c| split_rows(c, &lengths))
            .collect();
        let mut r2 = self.r2.map(|c| split_rows(c, &lengths));
        let mut resid_vol = self.resid_vol.map(|c| split_rows(c, &lengths));
        let mut n_obs = split_rows(self.n_obs, &lengths);
        let mut next = |parts: &mut std::vec::IntoIter<_>| parts.next().expect("one per stretch");
        bounds
            .windows(2)
            .map(|b| GroupOutput {
                group: self.group,
                dates: b[0]..b[1],
                coef: coef.iter_mut().map(&mut next).collect(),
                tstat: tstat.iter_mut().map(&mut next).collect(),
                r2: r2.as_mut().map(&mut next),
                resid_vol: resid_vol.as_mut().map(&mut next),
                n_obs: n_obs.next().expect("one per stretch"),
            })
            .collect()
    }

    /// No fit on output row `row`: NaN in every statistic.
    fn fill_missing(&mut self, row: usize) {
        for plane in self.coef.iter_mut().chain(self.tstat.iter_mut()) {
            row_slice(plane, row).fill(f64::NAN);
        }
        for plane in [&mut self.r2, &mut self.resid_vol].into_iter().flatten() {
            row_slice(plane, row).fill(f64::NAN);
        }
    }

    /// Output row `row` of every statistic.
    fn rows(&mut self, row: usize) -> DateRows<'_> {
        DateRows {
            coef: self.coef.iter_mut().map(|c| row_slice(c, row)).collect(),
            tstat: self.tstat.iter_mut().map(|c| row_slice(c, row)).collect(),
            r2: self.r2.as_mut().map(|c| row_slice(c, row)),
            resid_vol: self.resid_vol.as_mut().map(|c| row_slice(c, row)),
        }
    }

    /// No fit for lane `l` on output row `row`.
    fn set_missing(&mut self, row: usize, l: usize) {
        for plane in self.coef.iter_mut().chain(self.tstat.iter_mut()) {
            plane[[row, l]] = f64::NAN;
        }
        for plane in [&mut self.r2, &mut self.resid_vol].into_iter().flatten() {
            plane[[row, l]] = f64::NAN;
        }
    }
}

/// Pieces of work in the order of their first dates: so that the threads start on
/// different stretches of dates and each fills (and has the OS zero) its own pages of
/// the outputs.
fn by_date(mut pieces: Vec<GroupOutput<'_>>) -> Vec<GroupOutput<'_>> {
    pieces.sort_by_key(|piece| piece.dates.start);
    pieces
}

/// One date's output rows of a group, one row of lanes per statistic.
struct DateRows<'a> {
    coef: Vec<&'a mut [f64]>,
    /// Empty without t-statistics.
    tstat: Vec<&'a mut [f64]>,
    r2: Option<&'a mut [f64]>,
    resid_vol: Option<&'a mut [f64]>,
}

/// One date's window sums of a group without gaps, and what all its lanes share.
struct SharedDate<'a> {
    /// (X'WX)^-1, P x P row-major.
    inverse: &'a [f64],
    /// X'Wy (P x lanes).
    xy: &'a [f64],
    /// y'Wy (lanes), given when r2, resid_vol or t-statistics are wanted.
    yy: Option<&'a [f64]>,
    /// The centring shifts of the group's returns.
    shift: &'a [f64],
    /// Residual degrees of freedom.
    dof: f64,
    weight_sum: f64,
    /// Reciprocal standard error of each coefficient per unit of resid_vol (P).
    inverse_scale: &'a [f64],
    /// See [`WindowFacts::least_pivot`].
    least_pivot: f64,
}

/// One date's window sums turned into fits on the gap path, lane by lane
/// (component-major: the entry for component k of lane l is at k * lanes + l).
struct Fits {
    lanes: usize,
    /// Coefficients of the centred problem (P x lanes).
    b: Vec<f64>,
    /// Residual sums of squares, 0 for perfect fits; formed only for the statistics.
    ssr: Vec<f64>,
    weight_sum: Vec<f64>,
    n: Vec<u32>,
    /// Reciprocal standard error of each published coefficient per unit of residual
    /// volatility (P x lanes): 1 / sqrt of diag((X'WX)^-1), or of the alpha variance
    /// factor. Read for t-statistics only.
    inverse_scale: Vec<f64>,
    /// Lanes with enough rows and independent regressors.
    ok: Vec<bool>,
    /// See [`WindowFacts::least_pivot`], per lane.
    least_pivot: Vec<f64>,
}

/// One date's X'Wy (P x lanes) and y'Wy (lanes) of a group with gaps, as summed.
struct GapSums<'a> {
    xy: &'a [f64],
    yy: &'a [f64],
}

/// Scratch for summing the tails of a group's windows again, lane by lane, where a
/// large value that left a window would otherwise have taken digits with it (see
/// [`crate::window::LOSS_LIMIT`]).
struct TailRepair {
    /// The lanes to repair at this date.
    found: Vec<usize>,
    /// One lane's entries of the window sums.
    entries: Vec<usize>,
}

impl TailRepair {
    fn new() -> Self {
        Self {
            found: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Finds the lanes whose sums of squares at `t`, in the given segments (each
    /// `lanes` long, one entry per lane) of `sums`, show a loss of digits; every lane
    /// when `all`.
    fn find(
        &mut self,
        window: &WindowSums,
        t: usize,
        sums: &[f64],
        segments: &[usize],
        lanes: usize,
        all: bool,
    ) {
        self.found.clear();
        let lossy = |l: usize| {
            let mut entries = segments.iter().map(|&s| s * lanes + l);
            entries.any(|e| window.lossy(t, sums, e..e + 1))
        };
        self.found.extend((0..lanes).filter(|&l| all || lossy(l)));
    }

    /// Sums the tails of the lanes found again, each lane's `per_lane` entries (segment
    /// k of lane l at k * lanes + l) from `value(r, l, values)` for each row r, into
    /// `sums` as stepped (the window's own sums when `None`).
    fn rebuild(
        &mut self,
        window: &mut WindowSums,
        t: usize,
        (lanes, per_lane): (usize, usize),
        mut sums: Option<&mut [f64]>,
        mut value: impl FnMut(usize, usize, &mut [f64]),
    ) {
        let Self { found, entries } = self;
        for &l in found.iter() {
            entries.clear();
            entries.extend((0..per_lane).map(|k| k * lanes + l));
            let fill = |r: usize, values: &mut [f64]| value(r, l, values);
            match sums.as_deref_mut() {
                Some(sums) => window.rebuild_tail(t, entries, sums, fill),
                None => window.rebuild_own_tail(t, entries, fill),
            }
        }
    }
}

/// The zero regressors and returns of a row without factors.
struct ZeroRow {
    factors: Vec<f64>,
    returns: Vec<f64>,
}

impl ZeroRow {
    fn new(p: usize, lanes: usize) -> Self {
        Self {
            factors: vec![0.0; p],
            returns: vec![0.0; lanes],
        }
    }
}

/// Per-lane scratch of one date's quality statistics.
struct QualityScratch {
    /// resid_vol where it is not an output: it still scales the standard errors.
    resid_vol: Vec<f64>,
    /// 1 / resid_vol, NaN where there is no sampling error to scale by.
    inverse_vol: Vec<f64>,
}

impl Problem {
    fn new<Y: Panel>(y: &Y, x: ArrayView2<'_, f64>, options: &RollingOlsOptions) -> Result<Self> {
        let t_len = y.n_rows();
        if t_len == 0 {
            return Err(invalid("the data have no rows"));
        }
        if x.nrows() != t_len {
            return Err(invalid(format!(
                "factors have {} rows but returns have {t_len}",
                x.nrows()
            )));
        }
        let k = x.ncols();
        let p = k + usize::from(options.intercept);
        if p == 0 {
            return Err(invalid(
                "there are no regressors: give factors or an intercept",
            ));
        }
        let span = match options.window {
            Some(0) => return Err(invalid("window must be at least 1")),
            Some(w) if w > t_len => {
                return Err(invalid(format!(
                    "window of {w} rows is longer than the data ({t_len} rows)"
                )))
            }
            Some(w) if w < p => {
                return Err(invalid(format!(
                    "window of {w} rows is shorter than the {p} regressors"
                )))
            }
            Some(w) => Span::Rolling(w),
            None => Span::Expanding,
        };
        let longest = options.window.unwrap_or(t_len);
        let min_periods = options
            .min_periods
            .unwrap_or(options.window.unwrap_or(p + 1));
        if min_periods < p || min_periods > longest {
            return Err(invalid(format!(
                "min_periods must lie between the number of regressors ({p}) and the window ({longest} rows), got {min_periods}"
            )));
        }
        let lambda = match options.halflife {
            None => 1.0,
            Some(h) if h.is_finite() && h > 0.0 => 0.5f64.powf(1.0 / h),
            Some(h) => {
                return Err(invalid(format!(
                    "halflife must be a positive number of rows, got {h}"
                )))
            }
        };

        let mut row_ok = vec![true; t_len];
        for ((t, f), &v) in x.indexed_iter() {
            if let Some(error) = range_error(v, "factors", t, f) {
                return Err(error);
            }
            row_ok[t] &= !v.is_nan();
        }
        let x_shift: Vec<f64> = (0..k)
            .map(|f| {
                let present = (0..t_len).filter(|&t| row_ok[t]).map(|t| x[[t, f]]);
                if options.intercept {
                    median(&mut present.collect::<Vec<_>>())
                } else {
                    0.0
                }
            })
            .collect();
        let offset = usize::from(options.intercept);
        let mut design = vec![1.0; t_len * p];
        for (t, row) in design.chunks_exact_mut(p).enumerate() {
            for f in 0..k {
                row[offset + f] = x[[t, f]] - x_shift[f];
            }
        }
        Ok(Self {
            t_len,
            p,
            span,
            lambda,
            min_periods: min_periods as u32,
            intercept: options.intercept,
            stats: options.stats,
            tstats: options.tstats,
            design,
            counts: window_counts(&row_ok, span),
            sweep_bytes: SWEEP_BYTES,
            row_ok,
            x_shift,
        })
    }

    fn design_row(&self, t: usize) -> &[f64] {
        &self.design[t * self.p..(t + 1) * self.p]
    }

    /// v with alpha = v'b for the coefficients b of the centred problem: (1, -x_shift).
    fn alpha_direction(&self) -> Vec<f64> {
        let mut v = vec![0.0; self.p];
        if self.intercept {
            v[0] = 1.0;
            v[1..]
                .iter_mut()
                .zip(&self.x_shift)
                .for_each(|(v, s)| *v = -s);
        }
        v
    }

    /// Whether the window ending at `t` has enough rows to be fitted.
    fn fitted(&self, t: usize) -> bool {
        self.counts[t] >= self.min_periods
    }

    /// The most fitted dates whose inverses one sweep holds: `sweep_bytes` of them.
    fn sweep_len(&self) -> usize {
        let bytes = self.p.saturating_mul(self.p).saturating_mul(8);
        (self.sweep_bytes / bytes).max(1)
    }

    /// Consecutive stretches of dates covering them all, each with at most
    /// [`sweep_len`](Self::sweep_len) fitted dates. Cut at window blocks where that
    /// leaves a sweep at least a block, since the fits resume most cheaply there.
    fn sweeps(&self) -> Vec<Range<usize>> {
        let most = self.sweep_len();
        let block = match self.span {
            Span::Rolling(w) if w <= most => w,
            _ => 1,
        };
        let mut sweeps = Vec::new();
        let (mut start, mut fitted) = (0, 0);
        for t in 0..self.t_len {
            fitted += usize::from(self.fitted(t));
            // Cut before the date that would be one too many, at a block boundary if any.
            if fitted == most && (t + 1) % block == 0 {
                sweeps.push(start..t + 1);
                (start, fitted) = (t + 1, 0);
            } else if fitted > most {
                let end = (t - t % block).max(start + 1);
                sweeps.push(start..end);
                fitted = (end..=t).filter(|&r| self.fitted(r)).count();
                start = end;
            }
        }
        if start < self.t_len {
            sweeps.push(start..self.t_len);
        }
        sweeps
    }

    /// Steps the factors' window sums through `dates`, the rows after those already
    /// stepped: the facts of each window into `facts` (row 0 = `dates.start`) and X'WX,
    /// factorised once and shared by all assets, inverted for each fitted date. Stops
    /// within a date once `interrupt` is set.
    fn sweep_factors(
        &self,
        sums: &mut FactorSums,
        facts: &mut [WindowFacts],
        dates: Range<usize>,
        interrupt: &Interrupt,
    ) -> Result<SweepInverses> {
        let p = self.p;
        let fitted: Vec<bool> = dates.clone().map(|t| self.fitted(t)).collect();
        let mut starts = vec![usize::MAX; dates.len()];
        let mut next = 0;
        for (start, _) in starts.iter_mut().zip(&fitted).filter(|(_, &f)| f) {
            *start = next;
            next += p * p;
        }
        let mut inverses = SweepInverses {
            dates: dates.clone(),
            starts,
            values: try_filled(next, f64::NAN, SCRATCH)?,
        };
        let mut a = vec![0.0; packed_len(p)];
        let mut scratch = vec![0.0; p * p];
        let mut large = (p > linalg::LARGE_SYSTEM).then(|| LargeSystem::new(p));
        let v = self.alpha_direction();
        for (t, facts) in dates.clone().zip(facts.iter_mut()) {
            interrupt.check()?;
            let rebuilt = sums.window.advance_filled(t, &sums.squares, |r, g| {
                if self.row_ok[r] {
                    pack_outer(self.design_row(r), g);
                } else {
                    g.fill(0.0);
                }
            });
            *facts = WindowFacts {
                tail_rebuilt: rebuilt,
                alpha_variance: f64::NAN,
                least_pivot: f64::NAN,
                ..WindowFacts::default()
            };
            if !fitted[t - dates.start] {
                continue;
            }
            let window = sums.window.sums(t);
            facts.weight_sum = window[0];
            let start = inverses.starts[t - dates.start];
            let inverse = &mut inverses.values[start..start + p * p];
            if let Some(large) = large.as_mut() {
                // Seconds per date with thousands of regressors: look again in between.
                let (ok, least) = large.factorise(window);
                facts.least_pivot = least;
                if ok {
                    interrupt.check()?;
                    if !large.invert(inverse, || interrupt.is_set()) {
                        return Err(Error::Interrupted);
                    }
                }
                facts.ok = ok;
            } else {
                a.copy_from_slice(window);
                let (mut ok, mut least) = ([true], [1.0]);
                linalg::cholesky(&mut a, p, 1, &mut ok, &mut least, &mut scratch);
                facts.least_pivot = least[0];
                if ok[0] {
                    linalg::inverse(&a, p, inverse, &mut scratch);
                }
                facts.ok = ok[0];
            }
            if facts.ok && self.intercept {
                facts.alpha_variance = if large.is_some() {
                    linalg::quadratic_form(inverse, &v)
                } else {
                    let mut form = [0.0];
                    linalg::inverse_quadratic_form(&a, p, 1, &v, &mut form, &mut scratch);
                    form[0]
                };
            }
        }
        Ok(inverses)
    }

    /// The factors' window sums before the first row.
    fn factor_sums(&self) -> FactorSums {
        FactorSums {
            window: WindowSums::new(packed_len(self.p), self.span, self.lambda),
            squares: (0..self.p).map(linalg::packed_diagonal).collect(),
        }
    }

    /// Bytes of scratch memory a call needs besides its outputs, `None` past `usize`:
    /// the facts of every date, the inverses of two sweeps (one being fitted while the
    /// next is factorised), the factors' window sums and factorisations, and the
    /// window state of one group per thread. None of it grows with dates x regressors^2.
    fn scratch_bytes(&self, lanes: usize, threads: usize) -> Option<usize> {
        let f64s = std::mem::size_of::<f64>();
        let square = self.p.checked_mul(self.p)?.checked_mul(f64s)?;
        let facts = self
            .t_len
            .checked_mul(std::mem::size_of::<WindowFacts>() + f64s)?;
        let sweeps = self.sweep_len().checked_mul(square)?.checked_mul(2)?;
        // The factors' window sums (eight packed vectors) and factorisation (two
        // squares); each thread's large-system factor, inverse and working memory.
        let factors = square.checked_mul(threads.checked_mul(4)?.checked_add(6)?)?;
        let groups = lane_state_bytes(self.p)
            .checked_mul(lanes)?
            .checked_mul(threads)?;
        facts
            .checked_add(sweeps)?
            .checked_add(factors)?
            .checked_add(groups)
    }

    /// Dates at which the fits are split into stretches swept separately: block
    /// boundaries of a rolling window, where a sweep can resume exactly (see
    /// [`WindowSums::resuming_at`]) at the cost of one block stepped in twice. One
    /// stretch per thread, each of at least [`MIN_BLOCKS_PER_STRETCH`] blocks.
    fn date_splits(&self, threads: usize) -> Vec<usize> {
        let Span::Rolling(w) = self.span else {
            return Vec::new();
        };
        let blocks = self.t_len / w;
        let stretches = threads.min(blocks / MIN_BLOCKS_PER_STRETCH).max(1);
        (1..stretches)
            .map(|i| w * (blocks * i / stretches))
            .collect()
    }

    /// Reads a group's returns once (see [`load_group`](Self::load_group)), with the
    /// widest vector instructions this CPU has.
    fn scan_group<'y, Y: Panel>(
        &self,
        y: &'y Y,
        first: usize,
        lanes: usize,
    ) -> Result<GroupInput<'y, Y>> {
        widest_vectors(
            #[inline(always)]
            || self.load_group(y, first, lanes),
        )
    }

    /// Fits a group without gaps over its stretch of dates (see
    /// [`fit_shared_group`](Self::fit_shared_group)), with the widest vector
    /// instructions this CPU has; stops at the next date once `interrupt` is set.
    fn fit_shared<Y: Panel>(
        &self,
        input: &GroupInput<'_, Y>,
        facts: &[WindowFacts],
        inverses: &SweepInverses,
        out: &mut GroupOutput<'_>,
        interrupt: &Interrupt,
    ) {
        widest_vectors(
            #[inline(always)]
            || self.fit_shared_group(input, facts, inverses, out, interrupt),
        )
    }

    /// [`fit_shared`](Self::fit_shared) for a group with gaps (see
    /// [`fit_gappy_group`](Self::fit_gappy_group)).
    fn fit_gappy<Y: Panel>(
        &self,
        input: &GroupInput<'_, Y>,
        out: &mut GroupOutput<'_>,
        interrupt: &Interrupt,
    ) {
        widest_vectors(
            #[inline(always)]
            || self.fit_gappy_group(input, out, interrupt),
        )
    }

    /// Reads a group's returns once: refuses infinities, finds the centring shifts and
    /// whether any asset has gaps.
    #[inline(always)]
    fn load_group<'y, Y: Panel>(
        &self,
        y: &'y Y,
        first: usize,
        lanes: usize,
    ) -> Result<GroupInput<'y, Y>> {
        let unshifted = vec![0.0; lanes];
        let mut tile = RowTile::new(y, first, &unshifted);
        let mut sum = vec![0.0; lanes];
        let mut count = vec![0usize; lanes];
        let mut gappy = false;
        // Every `stride`-th row is kept for the centring medians (see `x_shift`).
        let stride = self.t_len.div_ceil(SHIFT_SAMPLE).max(1);
        let mut sample = Vec::with_capacity(SHIFT_SAMPLE.min(self.t_len) * lanes);
        for t in 0..self.t_len {
            // Read once: no need to copy what lies contiguous.
            let row = match y.contiguous_row(t, first, lanes) {
                Some(row) => row,
                None => tile.row(t),
            };
            // Branch-free, so that it vectorises: a NaN adds nothing and counts nothing.
            let (mut missing, mut infinite) = (0usize, false);
            if self.row_ok[t] {
                for ((s, c), &v) in sum.iter_mut().zip(count.iter_mut()).zip(row) {
                    let nan = v.is_nan();
                    *s += if nan { 0.0 } else { v };
                    *c += usize::from(!nan);
                    missing += usize::from(nan);
                    // Also true for an infinity, false for NaN.
                    infinite |= !in_range(v);
                }
                if self.intercept && t % stride == 0 {
                    sample.extend_from_slice(row);
                }
            } else {
                infinite = row.iter().any(|&v| !in_range(v));
            }
            if infinite {
                let error = row
                    .iter()
                    .enumerate()
                    .find_map(|(l, &v)| range_error(v, "returns", t, first + l))
                    .expect("a value out of range");
                return Err(error);
            }
            gappy |= missing > 0;
        }
        let mut kept = Vec::with_capacity(sample.len() / lanes.max(1));
        let shift: Vec<f64> = (0..lanes)
            .map(|l| {
                if !self.intercept || count[l] == 0 {
                    return 0.0;
                }
                kept.clear();
                let column = sample.iter().skip(l).step_by(lanes);
                kept.extend(column.copied().filter(|v| !v.is_nan()));
                if kept.is_empty() {
                    // No sampled row has this asset's return: its mean will do.
                    sum[l] / count[l] as f64
                } else {
                    median(&mut kept)
                }
            })
            .collect();
        Ok(GroupInput {
            y,
            first,
            lanes,
            shift,
            gappy,
        })
    }

    /// The regressors of row `t` and the group's centred returns on it; a row without
    /// factors counts as zero regressors and zero returns.
    #[inline(always)]
    fn shared_row<'a, Y: Panel>(
        &'a self,
        returns: &'a mut RowTile<'_, Y>,
        t: usize,
        zero: &'a ZeroRow,
    ) -> (&'a [f64], &'a [f64]) {
        if self.row_ok[t] {
            (self.design_row(t), returns.row(t))
        } else {
            (&zero.factors, &zero.returns)
        }
    }

    /// No asset of the group misses a return where the factors are present: per asset
    /// only X'Wy and y'Wy are summed and the shared inverse gives the coefficients,
    /// which go straight into the output rows with the statistics built from them.
    #[inline(always)]
    fn fit_shared_group<Y: Panel>(
        &self,
        input: &GroupInput<'_, Y>,
        facts: &[WindowFacts],
        inverses: &SweepInverses,
        out: &mut GroupOutput<'_>,
        interrupt: &Interrupt,
    ) {
        let (p, lanes) = (self.p, input.lanes);
        // Coefficients alone need no y'y and no residuals, but y'y also tells when a
        // large return has left the window (see `window::LOSS_LIMIT`).
        let fit_quality = self.stats || self.tstats;
        let zero = ZeroRow::new(p, lanes);
        let mut inverse_scale = vec![f64::NAN; p];
        let (mut entering, mut leaving) = (input.centred_rows(), input.centred_rows());
        let width = (p + 1) * lanes;
        let squares = p * lanes..width;
        let mut repair = TailRepair::new();
        let dates = out.dates.clone();
        let mut window = WindowSums::new(width, self.span, self.lambda).resuming_at(dates.start);
        for t in window.first_row()..dates.end {
            // Per date: a date is slow when it is the first to touch its output pages.
            if interrupt.is_set() {
                return;
            }
            // Rows enter as x_t y_t' and y_t^2, summed without being written out.
            let (x_in, y_in) = self.shared_row(&mut entering, t, &zero);
            let enter = Outer::new(x_in, y_in, true);
            match window.leaving_row(t) {
                Some(r) => {
                    let (x_out, y_out) = self.shared_row(&mut leaving, r, &zero);
                    let leave = Outer::new(x_out, y_out, true);
                    window.advance_outer(t, &enter, Some(&leave));
                }
                None => {
                    window.advance_outer(t, &enter, None);
                }
            };
            let rebuild_all = facts[t].tail_rebuilt;
            if rebuild_all || window.lossy(t, window.sums(t), squares.clone()) {
                self.repair_shared_tails(input, &mut window, &mut repair, t, rebuild_all);
            }
            let sums = window.sums(t);
            // Rows before the stretch only enter, to resume the window's sums.
            let Some(row) = t.checked_sub(dates.start) else {
                continue;
            };
            let (n, facts) = (self.counts[t], facts[t]);
            row_slice(&mut out.n_obs, row).fill(n);
            if n < self.min_periods || !facts.ok {
                out.fill_missing(row);
                continue;
            }
            let (xy, yy) = sums.split_at(p * lanes);
            let inverse = inverses.at(t, p);
            if self.tstats {
                for (k, scale) in inverse_scale.iter_mut().enumerate() {
                    let factor = if self.intercept && k == 0 {
                        facts.alpha_variance
                    } else {
                        inverse[k * p + k]
                    };
                    *scale = 1.0 / factor.sqrt();
                }
            }
            let date = SharedDate {
                inverse,
                xy,
                yy: fit_quality.then_some(yy),
                shift: &input.shift,
                dof: f64::from(n) - p as f64,
                weight_sum: facts.weight_sum,
                inverse_scale: &inverse_scale,
                least_pivot: facts.least_pivot,
            };
            self.publish_shared(&date, &mut out.rows(row));
        }
    }

    /// Sums the window tails at `t` of the lanes that lost digits (all lanes when
    /// `all`) again, on the shared path: entries x_k y (k < P), then y^2, per lane.
    #[cold]
    fn repair_shared_tails<Y: Panel>(
        &self,
        input: &GroupInput<'_, Y>,
        window: &mut WindowSums,
        repair: &mut TailRepair,
        t: usize,
        all: bool,
    ) {
        let (p, lanes) = (self.p, input.lanes);
        let sums = window.sums(t).to_vec();
        repair.find(window, t, &sums, &[p], lanes, all);
        repair.rebuild(window, t, (lanes, p + 1), None, |r, l, values| {
            if !self.row_ok[r] {
                values.fill(0.0);
                return;
            }
            let y = input.centred(r, l);
            let x = self.design_row(r);
            values[..p].iter_mut().zip(x).for_each(|(v, &x)| *v = x * y);
            values[p] = y * y;
        });
    }

    /// b = (X'WX)^-1 X'Wy for every lane of a group from the shared inverse, published
    /// into the coefficient rows (alpha shifted back to the original data) and, with
    /// y'Wy given, r2, resid_vol and t-statistics into theirs. Each block of lanes keeps
    /// its values in registers; every lane's terms are added in the same order.
    #[inline(always)]
    fn publish_shared(&self, date: &SharedDate<'_>, rows: &mut DateRows<'_>) {
        // With the number of regressors known at compile time every block's
        // coefficients stay in registers and each output row is written once.
        macro_rules! fixed {
            ($($p:literal)*) => {
                match self.p {
                    $($p => self.publish_fixed::<$p>(date, rows),)*
                    p if p > linalg::LARGE_SYSTEM => self.publish_product(date, rows),
                    _ => self.publish_lanes(date, rows, 0),
                }
            };
        }
        fixed!(1 2 3 4 5 6 7 8)
    }

    /// [`publish_shared`](Self::publish_shared) for `P` regressors.
    #[inline(always)]
    fn publish_fixed<const P: usize>(&self, date: &SharedDate<'_>, rows: &mut DateRows<'_>) {
        let lanes = date.shift.len();
        let a: [[f64; P]; P] =
            std::array::from_fn(|k| std::array::from_fn(|m| date.inverse[k * P + m]));
        let xy: [&[f64]; P] = std::array::from_fn(|m| &date.xy[m * lanes..(m + 1) * lanes]);
        let whole = lanes - lanes % LANE_BLOCK;
        for start in (0..whole).step_by(LANE_BLOCK) {
            let x: [[f64; LANE_BLOCK]; P] = std::array::from_fn(|m| *block(xy[m], start));
            let mut b = [[0.0; LANE_BLOCK]; P];
            for (b, a) in b.iter_mut().zip(&a) {
                for (&c, x) in a.iter().zip(&x) {
                    b.iter_mut().zip(x).for_each(|(b, v)| *b += c * v);
                }
            }
            self.publish_block(date, start, &x, &b, rows);
        }
        if whole < lanes {
            self.publish_lanes(date, rows, whole);
        }
    }

    /// [`publish_shared`](Self::publish_shared) lane by lane for the lanes from `first`
    /// on: any number of regressors, or the lanes left over after whole blocks.
    #[inline(always)]
    fn publish_lanes(&self, date: &SharedDate<'_>, rows: &mut DateRows<'_>, first: usize) {
        let (p, lanes) = (self.p, date.shift.len());
        let (mut x, mut b) = (vec![[0.0]; p], vec![[0.0]; p]);
        for l in first..lanes {
            for (m, x) in x.iter_mut().enumerate() {
                *x = [date.xy[m * lanes + l]];
            }
            for (k, b) in b.iter_mut().enumerate() {
                let row = &date.inverse[k * p..(k + 1) * p];
                *b = [row.iter().zip(&x).fold(0.0, |b, (&c, x)| b + c * x[0])];
            }
            self.publish_block(date, l, &x, &b, rows);
        }
    }

    /// [`publish_shared`](Self::publish_shared) with many regressors: every lane's
    /// coefficients at once as one matrix product, which reads the P x P inverse once
    /// per block of lanes instead of once per lane.
    #[cold]
    fn publish_product(&self, date: &SharedDate<'_>, rows: &mut DateRows<'_>) {
        let (p, lanes) = (self.p, date.shift.len());
        let mut b = vec![0.0; p * lanes];
        let inverse = MatRef::from_row_major_slice(date.inverse, p, p);
        let xy = MatRef::from_row_major_slice(date.xy, p, lanes);
        let product = MatMut::from_row_major_slice_mut(&mut b, p, lanes);
        // Sequential, so that the results do not depend on the number of threads.
        faer::linalg::matmul::matmul(product, Accum::Replace, inverse, xy, 1.0, Par::Seq);
        let (mut x, mut coefficients) = (vec![[0.0]; p], vec![[0.0]; p]);
        for l in 0..lanes {
            for (m, (x, c)) in x.iter_mut().zip(coefficients.iter_mut()).enumerate() {
                (*x, *c) = ([date.xy[m * lanes + l]], [b[m * lanes + l]]);
            }
            self.publish_block(date, l, &x, &coefficients, rows);
        }
    }

    /// Publishes the `W` lanes from `start`, given their X'Wy (`x`) and centred
    /// coefficients (`b`), one row of lanes per regressor.
    #[inline(always)]
    fn publish_block<const W: usize>(
        &self,
        date: &SharedDate<'_>,
        start: usize,
        x: &[[f64; W]],
        b: &[[f64; W]],
        rows: &mut DateRows<'_>,
    ) {
        // alpha of the original data: b0 + y_shift - x_shift . slopes
        let mut alpha = b[0];
        if self.intercept {
            let shift = block::<W>(date.shift, start);
            alpha.iter_mut().zip(shift).for_each(|(a, s)| *a += s);
            for (slope, &x_shift) in b[1..].iter().zip(&self.x_shift) {
                alpha
                    .iter_mut()
                    .zip(slope)
                    .for_each(|(a, b)| *a -= x_shift * b);
            }
        }
        let published = |k: usize| if k == 0 { &alpha } else { &b[k] };
        for (k, row) in rows.coef.iter_mut().enumerate() {
            *block_mut(row, start) = *published(k);
        }
        let Some(yy) = date.yy else { return };
        let yy = *block::<W>(yy, start);
        let mut ssr = yy;
        for (b, x) in b.iter().zip(x) {
            let terms = ssr.iter_mut().zip(b).zip(x);
            terms.for_each(|((s, b), v)| *s -= b * v);
        }
        for (s, &yy) in ssr.iter_mut().zip(&yy) {
            *s = perfect_fit_cut(*s, yy, date.least_pivot);
        }
        let mut vol = ssr;
        vol.iter_mut().for_each(|v| *v = resid_vol(*v, date.dof));
        if let Some(row) = rows.resid_vol.as_deref_mut() {
            *block_mut(row, start) = vol;
        }
        if let Some(row) = rows.r2.as_deref_mut() {
            // The intercept's entry of X'Wy is the weighted sum of y.
            let sums = ssr.iter().zip(&yy).zip(&x[0]);
            for (r2, ((&ssr, &yy), &sum_y)) in block_mut::<W>(row, start).iter_mut().zip(sums) {
                *r2 = self.r2(ssr, yy, sum_y, date.weight_sum);
            }
        }
        if !rows.tstat.is_empty() {
            let mut inverse = vol;
            inverse.iter_mut().for_each(|v| *v = inverse_vol(*v));
            for (k, (row, &scale)) in rows.tstat.iter_mut().zip(date.inverse_scale).enumerate() {
                let terms = published(k).iter().zip(&inverse);
                for (t, (c, inverse)) in block_mut::<W>(row, start).iter_mut().zip(terms) {
                    *t = c * inverse * scale;
                }
            }
        }
    }

    /// The packed products x_i x_k (i >= k) and the regressors of row `t`, with the
    /// group's centred returns on it in `values` (0 where missing) and in `present` 1
    /// where an asset has a return, else 0; a row without factors is all zeros.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn gappy_row<'a, Y: Panel>(
        &'a self,
        returns: &mut RowTile<'_, Y>,
        t: usize,
        values: &mut [f64],
        present: &mut [f64],
        packed: &'a mut [f64],
        no_factors: &'a [f64],
    ) -> (&'a [f64], &'a [f64]) {
        if !self.row_ok[t] {
            values.fill(0.0);
            present.fill(0.0);
            packed.fill(0.0);
            return (packed, no_factors);
        }
        let row = returns.row(t);
        for ((value, here), &v) in values.iter_mut().zip(present.iter_mut()).zip(row) {
            let missing = v.is_nan();
            *here = if missing { 0.0 } else { 1.0 };
            *value = if missing { 0.0 } else { v };
        }
        let x = self.design_row(t);
        pack_outer(x, packed);
        (packed, x)
    }

    /// Some asset of the group misses returns: each sums its own X'WX over its valid
    /// rows, and the group's systems are factorised and solved together per window.
    #[inline(always)]
    fn fit_gappy_group<Y: Panel>(
        &self,
        input: &GroupInput<'_, Y>,
        out: &mut GroupOutput<'_>,
        interrupt: &Interrupt,
    ) {
        let (p, lanes) = (self.p, input.lanes);
        let q = packed_len(p);
        let mut fits = Fits::new(p, lanes);
        let mut quality = QualityScratch::new(lanes);
        let (mut y_in, mut y_out) = (vec![0.0; lanes], vec![0.0; lanes]);
        let (mut present_in, mut present_out) = (vec![0.0; lanes], vec![0.0; lanes]);
        let (mut packed_in, mut packed_out) = (vec![0.0; q], vec![0.0; q]);
        let no_factors = vec![0.0; p];
        // Each date's window sums: packed X'WX (factorised in place), X'Wy and y'Wy.
        let mut system = vec![0.0; (q + p + 1) * lanes];
        let mut scratch = vec![0.0; p * lanes];
        let mut large = (p > linalg::LARGE_SYSTEM).then(|| LargeLanes::new(p));
        let v = self.alpha_direction();
        let (mut entering, mut leaving) = (input.centred_rows(), input.centred_rows());
        let dates = out.dates.clone();
        let mut window =
            WindowSums::new((q + p + 1) * lanes, self.span, self.lambda).resuming_at(dates.start);
        // Sums of squares per lane, which tell when a large value has left a window:
        // the diagonal of X'WX and y'Wy.
        let square_segments: Vec<usize> =
            (0..p).map(linalg::packed_diagonal).chain([q + p]).collect();
        let mut repair = TailRepair::new();
        for t in window.first_row()..dates.end {
            if interrupt.is_set() {
                return;
            }
            // Rows enter as packed x_t x_t' per present return, x_t y_t' and y_t^2, summed
            // without being written out. Valid rows per lane: +1 entering, -1 leaving.
            let (xx, x) = self.gappy_row(
                &mut entering,
                t,
                &mut y_in,
                &mut present_in,
                &mut packed_in,
                &no_factors,
            );
            let enter = Outer::new(x, &y_in, true).masked(xx, &present_in);
            for (count, &here) in fits.n.iter_mut().zip(&present_in) {
                *count += u32::from(here > 0.0);
            }
            match window.leaving_row(t) {
                Some(r) => {
                    let (xx, x) = self.gappy_row(
                        &mut leaving,
                        r,
                        &mut y_out,
                        &mut present_out,
                        &mut packed_out,
                        &no_factors,
                    );
                    for (count, &here) in fits.n.iter_mut().zip(&present_out) {
                        *count -= u32::from(here > 0.0);
                    }
                    let leave = Outer::new(x, &y_out, true).masked(xx, &present_out);
                    window.advance_outer_into(t, &enter, Some(&leave), &mut system);
                }
                None => window.advance_outer_into(t, &enter, None, &mut system),
            }
            let lossy = square_segments.iter().fold(false, |lossy, &s| {
                lossy | window.lossy(t, &system, s * lanes..(s + 1) * lanes)
            });
            if lossy {
                self.repair_gappy_tails(
                    input,
                    &mut window,
                    &mut repair,
                    t,
                    &square_segments,
                    &mut system,
                );
            }
            // Rows before the stretch only enter, to resume the window's sums and counts.
            let Some(row) = t.checked_sub(dates.start) else {
                continue;
            };
            // Every lane's X'WX, factorised and solved all at once.
            let (a, sums) = system.split_at_mut(q * lanes);
            let (xy, yy) = sums.split_at(p * lanes);
            fits.weight_sum.copy_from_slice(&a[..lanes]);
            for (ok, &n) in fits.ok.iter_mut().zip(&fits.n) {
                *ok = n >= self.min_periods;
            }
            fits.b.copy_from_slice(xy);
            if let Some(large) = large.as_mut() {
                if !self.solve_large_lanes(large, a, &v, &mut fits, interrupt) {
                    return;
                }
            } else {
                linalg::cholesky(
                    a,
                    p,
                    lanes,
                    &mut fits.ok,
                    &mut fits.least_pivot,
                    &mut scratch,
                );
                linalg::cholesky_solve(a, p, lanes, &mut fits.b);
                if self.tstats {
                    linalg::inverse_diagonal(a, p, lanes, &mut fits.inverse_scale, &mut scratch);
                    if self.intercept {
                        let alpha = &mut fits.inverse_scale[..lanes];
                        linalg::inverse_quadratic_form(a, p, lanes, &v, alpha, &mut scratch);
                    }
                }
            }
            if self.stats || self.tstats {
                fits.set_residuals(xy, yy);
            }
            let sums = GapSums { xy, yy };
            if self.tstats {
                fits.inverse_scale
                    .iter_mut()
                    .for_each(|c| *c = 1.0 / c.sqrt());
            }
            row_slice(&mut out.n_obs, row).copy_from_slice(&fits.n);
            self.finish(&fits, &sums, &input.shift, &mut quality, row, out);
        }
    }

    /// The gap path's systems one lane at a time when they are large (see
    /// [`linalg::LARGE_SYSTEM`]): factorised, solved for `fits.b` (holding X'Wy) and,
    /// for t-statistics, inverted. `false` once `interrupt` is set, looked at between
    /// steps that take up to a few tenths of a second each with thousands of regressors.
    #[cold]
    fn solve_large_lanes(
        &self,
        large: &mut LargeLanes,
        a: &[f64],
        v: &[f64],
        fits: &mut Fits,
        interrupt: &Interrupt,
    ) -> bool {
        let (p, lanes) = (self.p, fits.lanes);
        let LargeLanes {
            system,
            packed,
            column,
            inverse,
        } = large;
        for l in 0..lanes {
            if !fits.ok[l] {
                continue;
            }
            if interrupt.is_set() {
                return false;
            }
            packed
                .iter_mut()
                .enumerate()
                .for_each(|(c, x)| *x = a[c * lanes + l]);
            let (ok, least) = system.factorise(packed);
            (fits.ok[l], fits.least_pivot[l]) = (ok, least);
            if !ok {
                continue;
            }
            column
                .iter_mut()
                .enumerate()
                .for_each(|(k, b)| *b = fits.b[k * lanes + l]);
            system.solve(column);
            column
                .iter()
                .enumerate()
                .for_each(|(k, &b)| fits.b[k * lanes + l] = b);
            if self.tstats {
                if interrupt.is_set() {
                    return false;
                }
                if !system.invert(inverse, || interrupt.is_set()) {
                    return false;
                }
                for k in 0..p {
                    fits.inverse_scale[k * lanes + l] = inverse[k * p + k];
                }
                if self.intercept {
                    fits.inverse_scale[l] = linalg::quadratic_form(inverse, v);
                }
            }
        }
        true
    }

    /// Sums the window tails at `t` of the lanes that lost digits again, on the gap
    /// path: entries x_i x_k m (packed), x_k y, then y^2, per lane, with m = 1 where
    /// the lane has a return and y = 0 where it has none. `sums` as stepped.
    #[cold]
    fn repair_gappy_tails<Y: Panel>(
        &self,
        input: &GroupInput<'_, Y>,
        window: &mut WindowSums,
        repair: &mut TailRepair,
        t: usize,
        square_segments: &[usize],
        sums: &mut [f64],
    ) {
        let (p, lanes) = (self.p, input.lanes);
        let q = packed_len(p);
        repair.find(window, t, sums, square_segments, lanes, false);
        let mut packed = vec![0.0; q];
        repair.rebuild(window, t, (lanes, q + p + 1), Some(sums), |r, l, values| {
            let y = if self.row_ok[r] {
                input.centred(r, l)
            } else {
                f64::NAN
            };
            if y.is_nan() {
                values.fill(0.0);
                return;
            }
            let x = self.design_row(r);
            pack_outer(x, &mut packed);
            // The products of a present row: x_i x_k * 1, x_k y, y^2.
            let (masked, rest) = values.split_at_mut(q);
            masked.copy_from_slice(&packed);
            let (scaled, square) = rest.split_at_mut(p);
            scaled.iter_mut().zip(x).for_each(|(v, &x)| *v = x * y);
            square[0] = y * y;
        });
    }

    /// Publishes one date's fits into the group's output row `row`, across lanes.
    #[inline(always)]
    fn finish(
        &self,
        fits: &Fits,
        sums: &GapSums<'_>,
        shift: &[f64],
        scratch: &mut QualityScratch,
        row: usize,
        out: &mut GroupOutput<'_>,
    ) {
        let lanes = fits.lanes;
        if !fits.ok.iter().any(|&ok| ok) {
            out.fill_missing(row);
            return;
        }
        for (plane, b) in out.coef.iter_mut().zip(fits.b.chunks_exact(lanes)) {
            row_slice(plane, row).copy_from_slice(b);
        }
        if self.intercept {
            // alpha of the original data: b0 + y_shift - x_shift . slopes
            let alpha = row_slice(&mut out.coef[0], row);
            alpha.iter_mut().zip(shift).for_each(|(a, s)| *a += s);
            for (x_shift, slope) in self.x_shift.iter().zip(fits.b[lanes..].chunks_exact(lanes)) {
                alpha
                    .iter_mut()
                    .zip(slope)
                    .for_each(|(a, b)| *a -= x_shift * b);
            }
        }
        if self.stats || self.tstats {
            self.finish_quality(fits, sums, scratch, row, out);
        }
        for l in (0..lanes).filter(|&l| !fits.ok[l]) {
            out.set_missing(row, l);
        }
    }

    /// r2, resid_vol and t-statistics of one date into the group's output row `row`, from the
    /// fits, the window sums and the coefficients already published there.
    #[inline(always)]
    fn finish_quality(
        &self,
        fits: &Fits,
        sums: &GapSums<'_>,
        scratch: &mut QualityScratch,
        row: usize,
        out: &mut GroupOutput<'_>,
    ) {
        let (p, lanes) = (self.p, fits.lanes);
        let QualityScratch {
            resid_vol: vol_scratch,
            inverse_vol: inverse_vols,
        } = scratch;
        let ssr = &fits.ssr;
        // resid_vol doubles as the scale of the standard errors, wanted or not.
        let vol = match out.resid_vol.as_mut() {
            Some(plane) => row_slice(plane, row),
            None => &mut vol_scratch[..],
        };
        for ((vol, &ssr), &n) in vol.iter_mut().zip(ssr.iter()).zip(&fits.n) {
            *vol = resid_vol(ssr, f64::from(n) - p as f64);
        }
        if self.tstats {
            for (inverse, &vol) in inverse_vols.iter_mut().zip(vol.iter()) {
                *inverse = inverse_vol(vol);
            }
            let scales = fits.inverse_scale.chunks_exact(lanes);
            for ((plane, coef), scale) in out.tstat.iter_mut().zip(&out.coef).zip(scales) {
                let coef = coef.row(row);
                let coef = coef.as_slice().expect("output rows are contiguous");
                let terms = coef.iter().zip(inverse_vols.iter()).zip(scale);
                for (t, ((c, inverse_vol), scale)) in row_slice(plane, row).iter_mut().zip(terms) {
                    *t = c * inverse_vol * scale;
                }
            }
        }
        if let Some(plane) = out.r2.as_mut() {
            // The intercept's entry of X'Wy is the weighted sum of y.
            let sums = sums.yy.iter().zip(&sums.xy[..lanes]).zip(&fits.weight_sum);
            for ((r2, &ssr), ((&yy, &sum_y), &weight_sum)) in
                row_slice(plane, row).iter_mut().zip(ssr.iter()).zip(sums)
            {
                *r2 = self.r2(ssr, yy, sum_y, weight_sum);
            }
        }
    }

    /// R² from the residual sum of squares, y'Wy, the weighted sum of y and the sum of
    /// weights (the last two read with an intercept only).
    #[inline(always)]
    fn r2(&self, ssr: f64, yy: f64, sum_y: f64, weight_sum: f64) -> f64 {
        let tss = if self.intercept {
            yy - sum_y * sum_y / weight_sum
        } else {
            yy
        };
        if tss > ROUNDING * yy {
            // Mathematically SSR <= TSS; rounding must not push R² out of [0, 1].
            (1.0 - ssr / tss).clamp(0.0, 1.0)
        } else {
            f64::NAN
        }
    }
}

/// A residual sum of squares at the rounding level of y'Wy is a perfect fit: 0. Formed
/// as y'Wy - b'X'Wy, it carries the solution's rounding, which grows as the smallest
/// share of a regressor's sum of squares left by the others (`least`) shrinks.
#[inline(always)]
fn perfect_fit_cut(ssr: f64, yy: f64, least: f64) -> f64 {
    if ssr * least > ROUNDING * yy {
        ssr
    } else {
        0.0
    }
}

/// The residual volatility, NaN without residual degrees of freedom.
#[inline(always)]
fn resid_vol(ssr: f64, dof: f64) -> f64 {
    if dof > 0.0 {
        (ssr / dof).sqrt()
    } else {
        f64::NAN
    }
}

/// 1 / resid_vol, the scale of the t-statistics. A perfect fit has no sampling error
/// to scale by: its t-statistics are undefined (NaN).
#[inline(always)]
fn inverse_vol(vol: f64) -> f64 {
    if vol > 0.0 {
        1.0 / vol
    } else {
        f64::NAN
    }
}

impl Fits {
    /// SSR = y'Wy - b'X'Wy per lane, from the window sums and the coefficients in `b`,
    /// cut to 0 for perfect fits.
    #[inline(always)]
    fn set_residuals(&mut self, xy: &[f64], yy: &[f64]) {
        let lanes = self.lanes;
        self.ssr.copy_from_slice(yy);
        for (b_row, xy_row) in self.b.chunks_exact(lanes).zip(xy.chunks_exact(lanes)) {
            let terms = self.ssr.iter_mut().zip(b_row).zip(xy_row);
            terms.for_each(|((s, b), v)| *s -= b * v);
        }
        for ((ssr, &yy), &least) in self.ssr.iter_mut().zip(yy).zip(&self.least_pivot) {
            *ssr = perfect_fit_cut(*ssr, yy, least);
        }
    }

    fn new(p: usize, lanes: usize) -> Self {
        Self {
            lanes,
            b: vec![f64::NAN; p * lanes],
            ssr: vec![f64::NAN; lanes],
            weight_sum: vec![f64::NAN; lanes],
            n: vec![0; lanes],
            inverse_scale: vec![f64::NAN; p * lanes],
            ok: vec![false; lanes],
            least_pivot: vec![1.0; lanes],
        }
    }
}

impl QualityScratch {
    fn new(lanes: usize) -> Self {
        Self {
            resid_vol: vec![f64::NAN; lanes],
            inverse_vol: vec![f64::NAN; lanes],
        }
    }
}

/// The asset-column chunks of an optional output, or `None` for every group.
fn column_chunks<D: RemoveAxis>(
    array: Option<ArrayViewMut<'_, f64, D>>,
    axis: Axis,
    lanes: usize,
    n_groups: usize,
) -> Vec<Option<ArrayViewMut<'_, f64, D>>> {
    match array {
        Some(a) => a.into_axis_chunks_iter_mut(axis, lanes).map(Some).collect(),
        None => (0..n_groups).map(|_| None).collect(),
    }
}

/// Runs `work` with the widest vector instructions this CPU has. The portable code
/// is compiled a second time for AVX2 and chosen at run time, so a wheel built for any
/// x86-64 machine still uses AVX2 where it exists. Results are identical: nothing is
/// fused or reordered, only more lanes are processed per instruction. `work` must be
/// an `#[inline(always)]` closure, so that it is compiled into each version.
#[inline(always)]
fn widest_vectors<R>(work: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, as just checked.
        return unsafe { with_avx2(work) };
    }
    work()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn with_avx2<R>(work: impl FnOnce() -> R) -> R {
    work()
}

/// The most memory the inverses of one sweep of dates take (see [`Problem::sweeps`]).
const SWEEP_BYTES: usize = 128 << 20;

/// Minimum length of a stretch of dates swept on its own, in window blocks: every
/// stretch but the first steps one block in twice.
const MIN_BLOCKS_PER_STRETCH: usize = 4;

/// Lanes whose products are accumulated together in registers.
const LANE_BLOCK: usize = 4;

/// The `W` values of `row` from `start`.
#[inline(always)]
fn block<const W: usize>(row: &[f64], start: usize) -> &[f64; W] {
    row[start..start + W].try_into().expect("W values")
}

/// The `W` values of `row` from `start`, to write.
#[inline(always)]
fn block_mut<const W: usize>(row: &mut [f64], start: usize) -> &mut [f64; W] {
    (&mut row[start..start + W]).try_into().expect("W values")
}

/// Row `row` of a group's output plane: contiguous, as the outputs are C-contiguous.
#[inline(always)]
fn row_slice<'a, T>(plane: &'a mut ArrayViewMut2<'_, T>, row: usize) -> &'a mut [T] {
    plane
        .row_mut(row)
        .into_slice()
        .expect("output rows are contiguous")
}

/// A plane cut into consecutive stretches of rows of the given lengths.
fn split_rows<'a, T>(
    mut plane: ArrayViewMut2<'a, T>,
    lengths: &[usize],
) -> std::vec::IntoIter<ArrayViewMut2<'a, T>> {
    let mut parts = Vec::with_capacity(lengths.len());
    for &length in lengths {
        let (head, tail) = plane.split_at(Axis(0), length);
        parts.push(head);
        plane = tail;
    }
    parts.into_iter()
}

/// The median of finite values (0 for none): the upper median, no averaging needed.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let middle = values.len() / 2;
    *values.select_nth_unstable_by(middle, f64::total_cmp).1
}

/// The lower triangle of x x', row by row.
#[inline(always)]
fn pack_outer(x: &[f64], out: &mut [f64]) {
    let mut d = 0;
    for i in 0..x.len() {
        for k in 0..=i {
            out[d] = x[i] * x[k];
            d += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use faer::linalg::solvers::DenseSolveCore;
    use faer::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;

    struct Direct {
        coef: Vec<f64>,
        tstat: Vec<f64>,
        r2: f64,
        resid_vol: f64,
        n: u32,
    }

    /// Weighted least squares of one window by QR, straight from the definitions.
    fn direct(
        y: &Array2<f64>,
        x: &Array2<f64>,
        t: usize,
        j: usize,
        o: &RollingOlsOptions,
    ) -> Option<Direct> {
        let first = o.window.map_or(0, |w| (t + 1).saturating_sub(w));
        let lambda = o.halflife.map_or(1.0, |h| 0.5f64.powf(1.0 / h));
        let rows: Vec<usize> = (first..=t)
            .filter(|&r| !y[[r, j]].is_nan() && x.row(r).iter().all(|v| !v.is_nan()))
            .collect();
        let p = x.ncols() + usize::from(o.intercept);
        let n = rows.len();
        let min_periods = o.min_periods.unwrap_or(o.window.unwrap_or(p + 1));
        if n < min_periods {
            return None;
        }
        let w: Vec<f64> = rows.iter().map(|&r| lambda.powi((t - r) as i32)).collect();
        let regressor = |r: usize, k: usize| {
            if o.intercept {
                if k == 0 {
                    1.0
                } else {
                    x[[r, k - 1]]
                }
            } else {
                x[[r, k]]
            }
        };
        let a = Mat::<f64>::from_fn(n, p, |i, k| w[i].sqrt() * regressor(rows[i], k));
        let b = Mat::<f64>::from_fn(n, 1, |i, _| w[i].sqrt() * y[[rows[i], j]]);
        let coef = a.qr().solve_lstsq(&b);
        let coef: Vec<f64> = (0..p).map(|k| coef[(k, 0)]).collect();
        let fitted = |i: usize| (0..p).map(|k| regressor(rows[i], k) * coef[k]).sum::<f64>();
        let ssr: f64 = (0..n)
            .map(|i| w[i] * (y[[rows[i], j]] - fitted(i)).powi(2))
            .sum();
        let sw: f64 = w.iter().sum();
        let mean = if o.intercept {
            (0..n).map(|i| w[i] * y[[rows[i], j]]).sum::<f64>() / sw
        } else {
            0.0
        };
        let tss: f64 = (0..n)
            .map(|i| w[i] * (y[[rows[i], j]] - mean).powi(2))
            .sum();
        let s2 = ssr / (n - p) as f64;
        // diag((A'A)^-1) = squared row norms of R^-1, without forming A'A.
        let r = a.qr().thin_R().to_owned();
        let r_inverse = r.partial_piv_lu().inverse();
        let tstat = (0..p)
            .map(|k| coef[k] / (s2 * (0..p).map(|m| r_inverse[(k, m)].powi(2)).sum::<f64>()).sqrt())
            .collect();
        Some(Direct {
            coef,
            tstat,
            r2: 1.0 - ssr / tss,
            resid_vol: s2.sqrt(),
            n: n as u32,
        })
    }

    fn close(got: f64, want: f64, what: &str) {
        let tolerance = 1e-10 * want.abs().max(1.0);
        assert!(
            (got - want).abs() <= tolerance,
            "{what}: got {got}, want {want}"
        );
    }

    /// Returns driven by the factors, with gaps, a late starter and a missing factor row.
    fn market(
        t_len: usize,
        n: usize,
        k: usize,
        seed: u64,
        mean: f64,
    ) -> (Array2<f64>, Array2<f64>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut normal = || rng.sample::<f64, _>(StandardNormal);
        let x = Array2::from_shape_fn((t_len, k), |_| 0.01 * normal() + mean);
        let betas = Array2::from_shape_fn((n, k), |_| 1.0 + 0.5 * normal());
        let mut y = Array2::from_shape_fn((t_len, n), |(t, j)| {
            mean + (0..k).map(|f| betas[[j, f]] * x[[t, f]]).sum::<f64>() + 0.01 * normal()
        });
        let mut x = x;
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 1);
        for j in 0..n {
            if j % 3 == 1 {
                for t in 0..t_len {
                    if rng.random::<f64>() < 0.05 {
                        y[[t, j]] = f64::NAN;
                    }
                }
            }
        }
        if n > 2 {
            for t in 0..t_len / 3 {
                y[[t, 2]] = f64::NAN; // lists late
            }
        }
        x[[t_len / 2, 0]] = f64::NAN; // a missing factor value drops the date for all
        (y, x)
    }

    fn check(y: &Array2<f64>, x: &Array2<f64>, o: &RollingOlsOptions) {
        check_dates(y, x, o, |_| true);
    }

    /// [`check`] at the dates `t` for which `wanted(t)`.
    fn check_dates(
        y: &Array2<f64>,
        x: &Array2<f64>,
        o: &RollingOlsOptions,
        wanted: impl Fn(usize) -> bool,
    ) {
        let got = rolling_ols(&y.view(), x.view(), o).unwrap();
        let p = x.ncols() + usize::from(o.intercept);
        for t in (0..y.nrows()).filter(|&t| wanted(t)) {
            for j in 0..y.ncols() {
                let at = format!("t={t} j={j} {o:?}");
                match direct(y, x, t, j, o) {
                    None => assert!(got.coef[[0, t, j]].is_nan(), "{at}: expected NaN"),
                    Some(d) => {
                        assert_eq!(got.n_obs[[t, j]], d.n, "{at}");
                        for k in 0..p {
                            close(got.coef[[k, t, j]], d.coef[k], &format!("coef {k} {at}"));
                            close(
                                got.tstat.as_ref().unwrap()[[k, t, j]],
                                d.tstat[k],
                                &format!("t {k} {at}"),
                            );
                        }
                        close(got.r2.as_ref().unwrap()[[t, j]], d.r2, &format!("r2 {at}"));
                        close(
                            got.resid_vol.as_ref().unwrap()[[t, j]],
                            d.resid_vol,
                            &format!("vol {at}"),
                        );
                    }
                }
            }
        }
    }

    fn options(
        window: Option<usize>,
        min_periods: Option<usize>,
        halflife: Option<f64>,
        intercept: bool,
    ) -> RollingOlsOptions {
        RollingOlsOptions {
            window,
            min_periods,
            halflife,
            intercept,
            stats: true,
            tstats: true,
        }
    }

    #[test]
    fn rolling_windows_match_direct_solves() {
        let (y, x) = market(150, 11, 3, 7, 0.0);
        check(&y, &x, &options(Some(40), None, None, true));
        check(&y, &x, &options(Some(40), Some(10), None, true));
        check(&y, &x, &options(Some(33), Some(20), None, false));
    }

    #[test]
    fn weighted_and_expanding_windows_match_direct_solves() {
        let (y, x) = market(120, 9, 2, 11, 0.0);
        check(&y, &x, &options(Some(50), Some(30), Some(12.0), true));
        check(&y, &x, &options(None, None, None, true));
        check(&y, &x, &options(None, Some(15), Some(25.0), true));
    }

    #[test]
    fn large_common_means_keep_their_digits() {
        let (y, x) = market(100, 5, 2, 3, 100.0);
        check(&y, &x, &options(Some(30), None, None, true));
    }

    #[test]
    fn windows_without_a_huge_value_keep_every_digit() {
        // One bad tick in a factor, or in the returns of an asset without gaps (0) and
        // of one with gaps (1): the windows that do not hold it are as exact as if it
        // had never been there, on the shared, gap and weighted paths, rolling and
        // resumed in stretches.
        let bad_row = 50;
        for bad in [1e3, 1e8, 1e12] {
            for (in_factor, column) in [(true, 1), (false, 0), (false, 1)] {
                let (mut y, mut x) = market(150, 2, 3, 11, 0.0);
                if in_factor {
                    x[[bad_row, column]] = bad;
                } else {
                    y[[bad_row, column]] = bad;
                }
                for (window, halflife) in [(20, None), (30, Some(12.0))] {
                    for intercept in [true, false] {
                        let o = options(Some(window), Some(window - 4), halflife, intercept);
                        let free = |t: usize| !(bad_row..bad_row + window).contains(&t);
                        check_dates(&y, &x, &o, free);
                    }
                }
            }
        }
    }

    #[test]
    fn scratch_does_not_grow_with_dates_times_factors_squared() {
        // 2000 factors over 2100 dates used to keep 67 GB of cross-products and abort
        // the process; now two sweeps of inverses, whatever the number of dates.
        let k = 2000;
        let scratch = |t_len: usize| {
            let x = Array2::from_shape_fn((t_len, k), |(t, f)| ((t * 31 + f * 17) % 97) as f64);
            let y = Array2::from_shape_fn((t_len, 1), |(t, _)| (t % 13) as f64);
            let o = options(Some(2050), None, None, true);
            let problem = Problem::new(&y.view(), x.view(), &o).unwrap();
            problem.scratch_bytes(1, 2).unwrap()
        };
        let (short, long) = (scratch(2100), scratch(4200));
        assert!(short < 1 << 30, "{short} bytes");
        // 2100 more dates: their facts only, no cross-products.
        assert!(long - short < 2100 * 64, "{short} -> {long} bytes");
    }

    #[test]
    fn sweeps_cover_every_date_with_a_bounded_number_of_inverses() {
        let (y, x) = market(230, 4, 3, 21, 0.0);
        for o in [
            options(Some(10), None, None, true),
            options(Some(40), Some(8), Some(6.0), true),
            options(None, None, None, false),
        ] {
            let mut problem = Problem::new(&y.view(), x.view(), &o).unwrap();
            for most in [1, 2, 3, 7, 10, 11, 64, 1000] {
                problem.sweep_bytes = most * problem.p * problem.p * 8;
                let sweeps = problem.sweeps();
                assert_eq!(sweeps.first().map(|s| s.start), Some(0));
                assert_eq!(sweeps.last().map(|s| s.end), Some(230));
                for pair in sweeps.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{sweeps:?}");
                }
                for sweep in &sweeps {
                    assert!(!sweep.is_empty());
                    let fitted = sweep.clone().filter(|&t| problem.fitted(t)).count();
                    assert!(fitted <= most, "{most}: {sweep:?} has {fitted}");
                }
            }
        }
    }

    /// Every output of a call, to the bit.
    fn bits(r: &RollingOls) -> Vec<u64> {
        let stats = [&r.r2, &r.resid_vol].into_iter().flatten();
        let floats = r.coef.iter().chain(r.tstat.iter().flatten());
        let floats = floats.chain(stats.flat_map(|a| a.iter()));
        let counts = r.n_obs.iter().map(|&n| u64::from(n));
        floats.map(|v| v.to_bits()).chain(counts).collect()
    }

    #[test]
    fn results_do_not_depend_on_the_sweeps() {
        // Groups without gaps (assets 16 on) read the inverses sweep by sweep, resumed
        // anywhere in a block; with gaps (the first 16) they fit in one go. Both small
        // systems and large ones (solved by faer) must give the same bits for any sweep.
        for k in [3, linalg::LARGE_SYSTEM + 2] {
            let (mut y, x) = market(120, 20, k, 17, 0.0);
            y.slice_mut(ndarray::s![.., 16..])
                .mapv_inplace(|v| if v.is_nan() { 0.01 } else { v });
            for o in [
                options(Some(k + 9), None, None, true),
                options(Some(k + 20), Some(k + 3), Some(9.0), true),
                options(None, None, None, false),
            ] {
                let mut problem = Problem::new(&y.view(), x.view(), &o).unwrap();
                let whole = bits(&fit(&problem, &y.view()).unwrap());
                for most in [1, 2, 13] {
                    problem.sweep_bytes = most * problem.p * problem.p * 8;
                    assert!(problem.sweeps().len() > 1);
                    let swept = bits(&fit(&problem, &y.view()).unwrap());
                    assert!(swept == whole, "k={k} sweeps of {most}, {o:?}");
                }
            }
        }
    }

    #[test]
    fn many_regressors_match_direct_solves() {
        // Past linalg::LARGE_SYSTEM regressors each window is solved by faer. Windows
        // of at least k + 8 rows: with one or two rows to spare, 36 regressors are so
        // ill-conditioned that the normal equations leave 2e-10 of rounding in a
        // t-statistic (eps times the condition number squared).
        let k = linalg::LARGE_SYSTEM + 4;
        let (y, x) = market(90, 4, k, 23, 0.0);
        check(&y, &x, &options(Some(k + 20), None, None, true));
        check(
            &y,
            &x,
            &options(Some(k + 30), Some(k + 8), Some(20.0), true),
        );
        check(&y, &x, &options(None, Some(k + 8), None, false));
    }

    #[test]
    fn borrowed_columns_give_the_same_results() {
        let (y, x) = market(90, 10, 2, 5, 0.0);
        let columns: Vec<Vec<f64>> = (0..y.ncols()).map(|j| y.column(j).to_vec()).collect();
        let panel =
            Columns::new(columns.iter().map(|c| c.as_slice()).collect(), y.nrows()).unwrap();
        let o = options(Some(20), None, Some(10.0), true);
        let a = rolling_ols(&y.view(), x.view(), &o).unwrap();
        let b = rolling_ols(&panel, x.view(), &o).unwrap();
        assert!(a
            .coef
            .iter()
            .zip(b.coef.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn results_do_not_depend_on_the_stretches_of_dates() {
        // More threads sweep more stretches of dates, each resumed a block early: the
        // results must be the same to the last bit, with gaps (the first 16 assets) and
        // without (the rest, which stay on the shared path whatever the grouping).
        let (mut y, x) = market(230, 40, 3, 9, 0.0);
        y.slice_mut(ndarray::s![.., 16..])
            .mapv_inplace(|v| if v.is_nan() { 0.01 } else { v });
        for o in [
            options(Some(10), None, None, true),
            options(Some(7), Some(5), Some(4.0), true),
            options(Some(12), None, None, false),
            options(None, None, None, true),
        ] {
            let in_pool = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| rolling_ols(&y.view(), x.view(), &o).unwrap())
            };
            let one = bits(&in_pool(1));
            for threads in [2, 3, 5] {
                assert_eq!(bits(&in_pool(threads)), one, "{threads} threads, {o:?}");
            }
            let problem = Problem::new(&y.view(), x.view(), &o).unwrap();
            let splits = problem.date_splits(5);
            assert_eq!(splits.is_empty(), o.window.is_none(), "{splits:?} {o:?}");
        }
    }

    #[test]
    fn every_output_entry_is_written() {
        // The bindings hand the kernel uninitialised NumPy arrays: buffers filled with a
        // NaN of its own payload must come back equal, bit for bit, to zeroed ones.
        let sentinel = f64::from_bits(0x7ff8_dead_beef_0001);
        let (mut y, x) = market(90, 21, 2, 9, 0.0);
        y[[5, 3]] = f64::NAN;
        y.column_mut(20).fill(f64::NAN);
        for o in [
            options(Some(10), None, None, true),
            options(Some(7), Some(5), Some(4.0), true),
            options(Some(12), None, None, false),
            options(None, Some(30), None, true),
            RollingOlsOptions {
                stats: false,
                tstats: false,
                ..options(Some(10), None, None, true)
            },
        ] {
            let want = rolling_ols(&y.view(), x.view(), &o).unwrap();
            let mut got = want.clone();
            got.coef.fill(sentinel);
            got.tstat.iter_mut().for_each(|a| a.fill(sentinel));
            got.r2.iter_mut().for_each(|a| a.fill(sentinel));
            got.resid_vol.iter_mut().for_each(|a| a.fill(sentinel));
            got.n_obs.fill(u32::MAX);
            let views = RollingOlsViews {
                coef: got.coef.view_mut(),
                tstat: got.tstat.as_mut().map(|a| a.view_mut()),
                r2: got.r2.as_mut().map(|a| a.view_mut()),
                resid_vol: got.resid_vol.as_mut().map(|a| a.view_mut()),
                n_obs: got.n_obs.view_mut(),
            };
            rolling_ols_into(&y.view(), x.view(), &o, views, &Interrupt::new()).unwrap();
            let bits = |a: &Array3<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.coef), bits(&want.coef), "coef {o:?}");
            let planes = |r: &RollingOls| -> Vec<u64> {
                let stats = [&r.r2, &r.resid_vol].into_iter().flatten();
                let t = r.tstat.iter().flat_map(|a| a.iter());
                let v = t.chain(stats.flat_map(|a| a.iter()));
                v.map(|v| v.to_bits()).collect()
            };
            assert_eq!(planes(&got), planes(&want), "statistics {o:?}");
            assert_eq!(got.n_obs, want.n_obs, "n_obs {o:?}");
        }
    }

    #[test]
    fn shared_results_match_plain_per_lane_formulas_for_any_size_and_block() {
        // Fixed-size paths (P <= 8) and the general one (P = 10), whole blocks of lanes
        // and leftover lanes: the same terms in the same order, equal to the last bit.
        // Past linalg::LARGE_SYSTEM the coefficients are one matrix product, whose
        // terms are added in faer's order: equal to 1e-13.
        let large = linalg::LARGE_SYSTEM;
        for (k, intercept) in [(1, true), (5, true), (5, false), (9, true), (large, true)] {
            let (y, x) = market(40, 2, k, 3, 0.0);
            let o = options(Some(20.max(k + 2)), None, None, intercept);
            let problem = Problem::new(&y.view(), x.view(), &o).unwrap();
            let p = problem.p;
            let inverse: Vec<f64> = (0..p * p).map(|i| (i as f64 * 0.37).sin()).collect();
            let inverse_scale: Vec<f64> = (0..p).map(|k| 1.0 + k as f64).collect();
            let (dof, weight_sum) = (7.0, 20.0);
            for lanes in [1, 3, 4, 7, 8, 11] {
                let xy: Vec<f64> = (0..p * lanes).map(|i| (i as f64 * 0.71).cos()).collect();
                let shift: Vec<f64> = (0..lanes).map(|l| 0.01 * l as f64).collect();
                let yy: Vec<f64> = (0..lanes).map(|l| 50.0 + l as f64).collect();
                let date = SharedDate {
                    inverse: &inverse,
                    xy: &xy,
                    yy: Some(&yy),
                    shift: &shift,
                    dof,
                    weight_sum,
                    inverse_scale: &inverse_scale,
                    least_pivot: 1.0,
                };
                let mut planes = vec![vec![f64::NAN; lanes]; 2 * p + 2];
                let (coef, rest) = planes.split_at_mut(p);
                let (tstat, rest) = rest.split_at_mut(p);
                let (r2, resid_vol) = rest.split_at_mut(1);
                let mut rows = DateRows {
                    coef: coef.iter_mut().map(|r| &mut r[..]).collect(),
                    tstat: tstat.iter_mut().map(|r| &mut r[..]).collect(),
                    r2: Some(&mut r2[0]),
                    resid_vol: Some(&mut resid_vol[0]),
                };
                problem.publish_shared(&date, &mut rows);
                for l in 0..lanes {
                    let b: Vec<f64> = (0..p)
                        .map(|k| {
                            (0..p).fold(0.0, |s, m| s + inverse[k * p + m] * xy[m * lanes + l])
                        })
                        .collect();
                    let mut want = b.clone();
                    if intercept {
                        let slopes = b[1..].iter().zip(&problem.x_shift);
                        want[0] = slopes.fold(b[0] + shift[l], |a, (b, s)| a - s * b);
                    }
                    let ssr = (0..p).fold(yy[l], |s, k| s - b[k] * xy[k * lanes + l]);
                    assert!(ssr > 0.0, "the case should have residuals");
                    let vol = (ssr / dof).sqrt();
                    let tss = if intercept {
                        yy[l] - xy[l] * xy[l] / weight_sum
                    } else {
                        yy[l]
                    };
                    let case = format!("p={p} intercept={intercept} lanes={lanes} l={l}");
                    let same = |got: f64, want: f64, what: &str| {
                        if p > large {
                            let error = (got - want).abs() / want.abs().max(1.0);
                            assert!(error < 1e-13, "{case} {what}: {got} against {want}");
                        } else {
                            assert_eq!(got.to_bits(), want.to_bits(), "{case} {what}");
                        }
                    };
                    for k in 0..p {
                        same(coef[k][l], want[k], &format!("coef {k}"));
                        let t = want[k] * (1.0 / vol) * inverse_scale[k];
                        same(tstat[k][l], t, &format!("tstat {k}"));
                    }
                    same(resid_vol[0][l], vol, "resid_vol");
                    let r2_want = (1.0 - ssr / tss).clamp(0.0, 1.0);
                    same(r2[0][l], r2_want, "r2");
                }
            }
        }
    }

    #[test]
    fn outputs_that_are_not_c_contiguous_are_refused() {
        let (y, x) = market(30, 4, 2, 1, 0.0);
        let o = RollingOlsOptions {
            window: Some(10),
            stats: false,
            ..Default::default()
        };
        let mut coef = Array3::<f64>::zeros((3, 30, 4));
        let mut n_obs = Array2::<u32>::zeros((4, 30));
        let views = RollingOlsViews {
            coef: coef.view_mut(),
            tstat: None,
            r2: None,
            resid_vol: None,
            n_obs: n_obs.view_mut().reversed_axes(),
        };
        let err = rolling_ols_into(&y.view(), x.view(), &o, views, &Interrupt::new()).unwrap_err();
        assert!(err.to_string().contains("C-contiguous"), "{err}");
    }

    #[test]
    fn collinear_windows_are_nan_and_others_are_not() {
        let (mut y, mut x) = market(80, 4, 2, 9, 0.0);
        y.mapv_inplace(|v| if v.is_nan() { 0.001 } else { v });
        x[[40, 0]] = 0.002;
        for t in 10..30 {
            x[[t, 1]] = 0.0; // a factor that is flat for longer than the window
        }
        let o = options(Some(15), None, None, true);
        let got = rolling_ols(&y.view(), x.view(), &o).unwrap();
        for t in 14..80 {
            let flat = (24..30).contains(&t);
            assert_eq!(got.coef[[1, t, 0]].is_nan(), flat, "t={t}");
            assert_eq!(got.coef[[1, t, 3]].is_nan(), flat, "t={t}");
        }
    }

    #[test]
    fn bad_input_is_refused_not_panicked_on() {
        let (y, mut x) = market(30, 3, 2, 1, 0.0);
        let o = |window| RollingOlsOptions {
            window,
            ..Default::default()
        };
        assert!(matches!(
            rolling_ols(&y.view(), x.view(), &o(Some(31))),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            rolling_ols(&y.view(), x.view(), &o(Some(2))),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            rolling_ols(&y.view(), x.view(), &o(Some(0))),
            Err(Error::InvalidInput(_))
        ));
        let halflife = RollingOlsOptions {
            window: Some(10),
            halflife: Some(-1.0),
            ..Default::default()
        };
        assert!(matches!(
            rolling_ols(&y.view(), x.view(), &halflife),
            Err(Error::InvalidInput(_))
        ));
        let min_periods = RollingOlsOptions {
            window: Some(10),
            min_periods: Some(11),
            ..Default::default()
        };
        assert!(matches!(
            rolling_ols(&y.view(), x.view(), &min_periods),
            Err(Error::InvalidInput(_))
        ));
        let mut y_inf = y.clone();
        y_inf[[4, 2]] = f64::INFINITY;
        assert_eq!(
            rolling_ols(&y_inf.view(), x.view(), &o(Some(10))).unwrap_err(),
            Error::NonFinite {
                input: "returns",
                row: 4,
                column: 2
            }
        );
        x[[7, 1]] = f64::NEG_INFINITY;
        assert_eq!(
            rolling_ols(&y.view(), x.view(), &o(Some(10))).unwrap_err(),
            Error::NonFinite {
                input: "factors",
                row: 7,
                column: 1
            }
        );
        let short = Array2::<f64>::zeros((29, 2));
        assert!(rolling_ols(&y.view(), short.view(), &o(Some(10))).is_err());
        let empty = Array2::<f64>::zeros((0, 3));
        assert!(rolling_ols(&empty.view(), Array2::<f64>::zeros((0, 2)).view(), &o(None)).is_err());
    }

    /// Returns that set `interrupt` on their `trip_at`-th read, as Ctrl-C would mid-call.
    struct Tripwire<'a> {
        y: ArrayView2<'a, f64>,
        reads: std::sync::atomic::AtomicUsize,
        trip_at: usize,
        interrupt: &'a Interrupt,
    }

    impl Panel for Tripwire<'_> {
        fn n_rows(&self) -> usize {
            self.y.nrows()
        }
        fn n_cols(&self) -> usize {
            self.y.ncols()
        }
        fn copy_rows(&self, row: usize, rows: usize, first: usize, shift: &[f64], out: &mut [f64]) {
            let reads = 1 + self
                .reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if reads >= self.trip_at {
                self.interrupt.set();
            }
            self.y.copy_rows(row, rows, first, shift, out);
        }
    }

    fn run_with(
        y: &Tripwire<'_>,
        x: &Array2<f64>,
        o: &RollingOlsOptions,
    ) -> (Result<()>, RollingOls) {
        let (t_len, n, p) = (y.n_rows(), y.n_cols(), x.ncols() + 1);
        let mut coef = Array3::<f64>::zeros((p, t_len, n));
        let mut tstat = Array3::<f64>::zeros((p, t_len, n));
        let mut r2 = Array2::<f64>::zeros((t_len, n));
        let mut resid_vol = Array2::<f64>::zeros((t_len, n));
        let mut n_obs = Array2::<u32>::zeros((t_len, n));
        let views = RollingOlsViews {
            coef: coef.view_mut(),
            tstat: Some(tstat.view_mut()),
            r2: Some(r2.view_mut()),
            resid_vol: Some(resid_vol.view_mut()),
            n_obs: n_obs.view_mut(),
        };
        let result = rolling_ols_into(y, x.view(), o, views, y.interrupt);
        let out = RollingOls {
            coef,
            tstat: Some(tstat),
            r2: Some(r2),
            resid_vol: Some(resid_vol),
            n_obs,
        };
        (result, out)
    }

    #[test]
    fn a_set_interrupt_stops_the_fits_with_an_error() {
        // Gaps in every third asset: both the shared and the gap path are stopped.
        let (y, x) = market(3000, 96, 3, 21, 0.0);
        for o in [
            options(Some(60), None, None, true),
            options(None, None, Some(50.0), true),
        ] {
            // Unset, the interrupt changes nothing.
            let never = Interrupt::new();
            let tripwire = |trip_at, interrupt| Tripwire {
                y: y.view(),
                reads: Default::default(),
                trip_at,
                interrupt,
            };
            let whole = tripwire(usize::MAX, &never);
            let (result, out) = run_with(&whole, &x, &o);
            assert_eq!(result, Ok(()));
            let want = rolling_ols(&y.view(), x.view(), &o).unwrap();
            assert_eq!(out.n_obs, want.n_obs);
            assert!(out
                .coef
                .iter()
                .zip(&want.coef)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
            let all_reads = whole.reads.into_inner();

            // Set before the call: nothing is read or written.
            let early = Interrupt::new();
            early.set();
            let (result, out) = run_with(&tripwire(usize::MAX, &early), &x, &o);
            assert_eq!(result, Err(Error::Interrupted));
            assert!(out.n_obs.iter().all(|&n| n == 0));

            // Set a tenth of the way in: the call stops early, with the error.
            let midway = Interrupt::new();
            let stopped = tripwire(all_reads / 10, &midway);
            let (result, out) = run_with(&stopped, &x, &o);
            assert_eq!(result, Err(Error::Interrupted), "{o:?}");
            let reads = stopped.reads.into_inner();
            assert!(
                reads < all_reads / 2,
                "{reads} of {all_reads} reads after the interrupt"
            );
            assert!(
                out.n_obs.iter().any(|&n| n == 0),
                "every window was still fitted"
            );
        }
    }
}
