//! Diversification scores of a portfolio over windows of a return matrix.
//!
//! Every score of a window is a function of its centred returns `X` (W rows, n assets)
//! and the weights `w`. The covariance is `S = a X'X + b I` (sample: `a = 1/(W-1)`,
//! `b = 0`; Ledoit-Wolf: `a = (1-delta)/W`, `b = delta mu`), so:
//!
//! - asset and portfolio volatilities need only column norms and `r = X w`: O(W n);
//! - the mean correlation is `(|sum_j z_j|^2 - m) / (m(m-1))` with `z_j` the unit-norm
//!   centred columns: O(W n);
//! - the principal components of `S` come from the smaller of `X'X` (n x n) and the
//!   Gram matrix `X X'` (W x W): the non-zero eigenvalues agree, and a portfolio's
//!   variance on component k is `a (u_k' r)^2` with `u_k` the Gram eigenvector, so the
//!   PCA bets never need the n x n matrix when the window is shorter than the universe;
//! - the minimum-torsion bets need the n x n correlation matrix and an iteration whose
//!   every step is one symmetric eigendecomposition. Consecutive windows overlap, so
//!   each window starts from the previous window's solution, and Anderson acceleration
//!   cuts the number of steps.
//!
//! Windows run in parallel in contiguous chunks (so the warm start survives); a single
//! window lets faer use the threads instead.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{self, ComputeEigenvectors};
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Mat, MatRef, Par};
use rayon::prelude::*;

use crate::error::{in_range, invalid, range_error, Result};
use crate::interrupt::Interrupt;

/// The covariance estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shrinkage {
    /// Sample covariance, ddof = 1.
    None,
    /// Ledoit & Wolf (2004) towards a scaled identity, as scikit-learn's `LedoitWolf`.
    LedoitWolf,
}

/// The portfolio of each window.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// Equal weight over the window's included assets.
    Equal,
    /// One weight per asset (column), for every window.
    Static(&'a [f64]),
    /// One row of weights per window, row-major (n_windows x n_assets); a row that
    /// starts with NaN means the window has no weights.
    PerWindow(&'a [f64]),
}

#[derive(Debug, Clone, Copy)]
pub struct DiversificationOptions {
    /// Rows per window.
    pub width: usize,
    pub shrinkage: Shrinkage,
    /// Bound on the minimum-torsion iterations of one window.
    pub max_iter: usize,
}

/// One entry per window.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// The window's last row.
    pub end_row: Vec<usize>,
    pub n_assets: Vec<u32>,
    pub excluded_weight: Vec<f64>,
    /// Portfolio volatility `sqrt(w'Sw)` (weights as given).
    pub volatility: Vec<f64>,
    pub diversification_ratio: Vec<f64>,
    pub effective_n: Vec<f64>,
    pub enb_pca: Vec<f64>,
    pub enb_mt: Vec<f64>,
    pub absorption_ratio: Vec<f64>,
    pub avg_correlation: Vec<f64>,
    /// The minimum-torsion iteration did not converge within `max_iter` steps.
    pub not_converged: Vec<bool>,
}

/// Relative change of the torsion scales at which the iteration has converged; the
/// effective number of bets is then exact to about 1e-13.
const TORSION_TOLERANCE: f64 = 1e-12;
/// A correlation matrix whose smallest eigenvalue is below this share of its largest
/// is treated as singular: its minimum-torsion bets are not defined.
const DEFINITE_TOLERANCE: f64 = 1e-10;
/// Steps of history kept by the Anderson acceleration.
const ANDERSON_DEPTH: usize = 5;

/// Windows of `width` rows ending at the increasing rows `ends` must fit in the data.
pub(crate) fn check_ends(n_rows: usize, width: usize, ends: &[usize]) -> Result<()> {
    check_width(n_rows, width)?;
    match ends
        .iter()
        .enumerate()
        .find(|&(i, &e)| e + 1 < width || e >= n_rows || (i > 0 && e <= ends[i - 1]))
    {
        Some((_, bad)) => Err(invalid(format!(
            "window end row {bad} is not an increasing row of a full window"
        ))),
        None => Ok(()),
    }
}

fn check_width(n_rows: usize, width: usize) -> Result<()> {
    if n_rows == 0 {
        return Err(invalid("returns have no rows"));
    }
    if width < 2 {
        return Err(invalid(format!(
            "window must be at least 2 rows to estimate a covariance, got {width}"
        )));
    }
    if width > n_rows {
        return Err(invalid(format!(
            "window of {width} rows is longer than the {n_rows} rows of returns"
        )));
    }
    Ok(())
}

/// Diversification scores of the windows of `options.width` rows ending at the rows
/// `ends` (increasing) of `columns` (one slice of `n_rows` returns per asset; NaN =
/// missing). Once `interrupt` is set the call stops at the next window with
/// [`Error::Interrupted`].
pub fn diversification(
    columns: &[&[f64]],
    n_rows: usize,
    ends: &[usize],
    weights: Weights<'_>,
    options: &DiversificationOptions,
    interrupt: &Interrupt,
) -> Result<Scores> {
    let n_assets = columns.len();
    check_columns(columns, n_rows)?;
    let width = options.width;
    check_ends(n_rows, width, ends)?;
    match weights {
        Weights::Static(w) if w.len() != n_assets => {
            return Err(invalid(format!(
                "{} weights for {n_assets} assets",
                w.len()
            )))
        }
        Weights::PerWindow(w) if w.len() != n_assets * ends.len() => {
            return Err(invalid(format!(
                "{} weights for {n_assets} assets x {} windows",
                w.len(),
                ends.len()
            )))
        }
        _ => {}
    }
    match weights {
        Weights::Equal => {}
        Weights::Static(w) => check_weights(w, None)?,
        Weights::PerWindow(w) => {
            // A row that starts with NaN means that window has no weights.
            let rows = w.chunks(n_assets.max(1)).enumerate();
            for (k, row) in rows.filter(|(_, row)| !row.first().is_some_and(|x| x.is_nan())) {
                check_weights(row, Some(k))?;
            }
        }
    }
    let weights_of = |k: usize| -> Option<&[f64]> {
        match weights {
            Weights::Equal => None,
            Weights::Static(w) => Some(w),
            Weights::PerWindow(w) => Some(&w[k * n_assets..(k + 1) * n_assets]),
        }
    };

    let threads = rayon::current_num_threads().max(1);
    let inner_par = if ends.len() == 1 {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    let chunk = ends.len().div_ceil(threads).max(1);
    let rows: Vec<WindowScores> = ends
        .par_chunks(chunk)
        .enumerate()
        .flat_map_iter(|(c, chunk_ends)| {
            // Torsion scales of the previous window, per asset, for the warm start.
            let mut warm = vec![f64::NAN; n_assets];
            let first = c * chunk;
            chunk_ends
                .iter()
                .enumerate()
                .map(|(i, &end)| {
                    interrupt.check()?;
                    let window = Window::gather(columns, end + 1 - width..end + 1);
                    let weights = weights_of(first + i);
                    let scores = window.scores(weights, options, &mut warm, inner_par, interrupt);
                    // Scores cut short by the interrupt are not returned.
                    interrupt.check().map(|()| scores)
                })
                .collect::<Vec<_>>()
        })
        .collect::<Result<_>>()?;

    let mut scores = Scores::default();
    for (row, &end) in rows.into_iter().zip(ends) {
        scores.end_row.push(end);
        scores.volatility.push(row.volatility);
        scores.n_assets.push(row.n_assets);
        scores.excluded_weight.push(row.excluded_weight);
        scores.diversification_ratio.push(row.diversification_ratio);
        scores.effective_n.push(row.effective_n);
        scores.enb_pca.push(row.enb_pca);
        scores.enb_mt.push(row.enb_mt);
        scores.absorption_ratio.push(row.absorption_ratio);
        scores.avg_correlation.push(row.avg_correlation);
        scores.not_converged.push(row.not_converged);
    }
    // Each input in range, their product need not be.
    if let Some(k) = scores.volatility.iter().position(|v| v.is_infinite()) {
        return Err(overflow(&format!(
            "the portfolio volatility of the window ending at row {}",
            ends[k]
        )));
    }
    Ok(scores)
}

/// Euler decomposition of portfolio volatility over all rows of `columns` (no missing
/// values allowed: the caller keeps the rows where every held asset has a return).
#[derive(Debug, Clone)]
pub struct RiskContributions {
    pub volatility: Vec<f64>,
    pub marginal: Vec<f64>,
    pub component: Vec<f64>,
    pub percent: Vec<f64>,
}

pub fn risk_contributions(
    columns: &[&[f64]],
    n_rows: usize,
    weights: &[f64],
    shrinkage: Shrinkage,
) -> Result<RiskContributions> {
    check_columns(columns, n_rows)?;
    if weights.len() != columns.len() {
        return Err(invalid(format!(
            "{} weights for {} assets",
            weights.len(),
            columns.len()
        )));
    }
    check_weights(weights, None)?;
    if n_rows < 2 {
        return Err(invalid(format!(
            "risk contributions need at least 2 rows with a return for every held asset, got {n_rows}"
        )));
    }
    if let Some((j, _)) = columns
        .iter()
        .enumerate()
        .find(|(_, c)| c.iter().any(|x| x.is_nan()))
    {
        return Err(invalid(format!("returns column {j} has missing values")));
    }
    let window = Window::gather(columns, 0..n_rows);
    let (a, b) = match shrinkage {
        Shrinkage::None => window.covariance_scale(shrinkage, 0.0),
        Shrinkage::LedoitWolf => {
            let cross = window.cross(n_rows < columns.len(), Par::rayon(0));
            window.covariance_scale(shrinkage, frobenius_sq_lower(cross.as_ref()))
        }
    };
    // Work with the weights divided by the largest of them: `w'Sw` of weights near
    // 1e-160 or 1e160 would under- or overflow. The marginal contributions and the
    // percentages do not depend on the scale; the components are those of `weights`.
    let scale = match largest_abs(weights) {
        s if s > 0.0 && s.is_finite() => s,
        _ => 1.0,
    };
    let unit: Vec<f64> = weights.iter().map(|w| w / scale).collect();
    let r = window.portfolio(&unit);
    // S w = a X'(X w) + b w.
    let n = columns.len();
    let mut s_w = vec![0.0; n];
    for (j, out) in s_w.iter_mut().enumerate() {
        *out = a * dot(window.column(j), &r) + b * unit[j];
    }
    let variance = dot(&unit, &s_w);
    if variance.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(invalid(
            "the portfolio has zero volatility: risk contributions are not defined",
        ));
    }
    let vol = variance.sqrt();
    let volatility = window
        .sumsq
        .iter()
        .map(|&s| (a * s + b).max(0.0).sqrt())
        .collect();
    let marginal: Vec<f64> = s_w.iter().map(|x| x / vol).collect();
    let component: Vec<f64> = marginal.iter().zip(weights).map(|(m, w)| m * w).collect();
    let percent = marginal
        .iter()
        .zip(&unit)
        .map(|(m, w)| m * w / vol)
        .collect();
    if component.iter().any(|c| c.is_infinite()) {
        return Err(overflow("the risk contributions"));
    }
    Ok(RiskContributions {
        volatility,
        marginal,
        component,
        percent,
    })
}

pub(crate) fn check_columns(columns: &[&[f64]], n_rows: usize) -> Result<()> {
    if columns.is_empty() {
        return Err(invalid("returns have no asset columns"));
    }
    columns.par_iter().enumerate().try_for_each(|(j, c)| {
        if c.len() != n_rows {
            return Err(invalid(format!(
                "returns column {j} has {} rows, expected {n_rows}",
                c.len()
            )));
        }
        // Beyond 1e150 a window's sums of squares overflow to inf (found by fuzz/).
        match c.iter().position(|&x| !in_range(x)) {
            Some(row) => Err(range_error(c[row], "returns", row, j).expect("out of range")),
            None => Ok(()),
        }
    })
}

/// `max |x|` (0 for an empty slice; NaN entries are skipped).
/// The error of a result beyond the range of floating point.
fn overflow(what: &str) -> crate::Error {
    invalid(format!(
        "{what} would exceed 1e308 (weights times returns): rescale the weights or the returns"
    ))
}

/// Weights must be finite (`window`: the window of a row of per-window weights).
fn check_weights(weights: &[f64], window: Option<usize>) -> Result<()> {
    let Some(j) = weights.iter().position(|w| !w.is_finite()) else {
        return Ok(());
    };
    let of = window.map_or(String::new(), |k| format!(" of window {k}"));
    Err(invalid(format!(
        "the weight{of} of asset {j} is {}: weights must be finite numbers",
        weights[j]
    )))
}

fn largest_abs(x: &[f64]) -> f64 {
    x.iter().fold(0.0f64, |acc, v| acc.max(v.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The scores of one window.
struct WindowScores {
    n_assets: u32,
    excluded_weight: f64,
    volatility: f64,
    diversification_ratio: f64,
    effective_n: f64,
    enb_pca: f64,
    enb_mt: f64,
    absorption_ratio: f64,
    avg_correlation: f64,
    not_converged: bool,
}

/// What the portfolio scores of a window reuse from its other scores: the lower half of
/// `X'X` (or of the Gram matrix `X X'`), the covariance scale `a X'X + b I`, and the
/// sample correlation's eigenvalues when they are those of all the window's assets.
struct Portfolio {
    cross: Mat<f64>,
    gram: bool,
    a: f64,
    b: f64,
    spectrum: Option<Vec<f64>>,
}

/// The included assets of one window (a return on every row), centred.
pub(crate) struct Window {
    /// Column index of each included asset.
    pub(crate) assets: Vec<usize>,
    /// W x n centred returns; a constant column is exactly zero.
    centred: Mat<f64>,
    /// Squared norm of each centred column.
    pub(crate) sumsq: Vec<f64>,
}

impl Window {
    pub(crate) fn gather(columns: &[&[f64]], rows: std::ops::Range<usize>) -> Window {
        let width = rows.len();
        let assets: Vec<usize> = (0..columns.len())
            .filter(|&j| columns[j][rows.clone()].iter().all(|x| !x.is_nan()))
            .collect();
        let mut centred = Mat::<f64>::zeros(width, assets.len());
        let mut sumsq = vec![0.0; assets.len()];
        for (k, &j) in assets.iter().enumerate() {
            let x = &columns[j][rows.clone()];
            let out = centred.col_as_slice_mut(k);
            if x.iter().all(|&v| v == x[0]) {
                continue; // constant: zero volatility, exactly
            }
            // Two-pass mean with the first pass's rounding corrected.
            let mean0 = x.iter().sum::<f64>() / width as f64;
            let mean = mean0 + x.iter().map(|v| v - mean0).sum::<f64>() / width as f64;
            for (o, v) in out.iter_mut().zip(x) {
                *o = v - mean;
            }
            sumsq[k] = out.iter().map(|v| v * v).sum();
        }
        Window {
            assets,
            centred,
            sumsq,
        }
    }

    fn rows(&self) -> usize {
        self.centred.nrows()
    }

    fn column(&self, k: usize) -> &[f64] {
        self.centred.col_as_slice(k)
    }

    /// The centred portfolio returns `X w`.
    fn portfolio(&self, w: &[f64]) -> Vec<f64> {
        let mut r = vec![0.0; self.rows()];
        for (k, &wk) in w.iter().enumerate() {
            if wk != 0.0 {
                for (o, x) in r.iter_mut().zip(self.column(k)) {
                    *o += wk * x;
                }
            }
        }
        r
    }

    /// The lower half of `X'X` (n x n) or of the Gram matrix `X X'` (W x W).
    pub(crate) fn cross(&self, gram: bool, par: Par) -> Mat<f64> {
        let x = self.centred.as_ref();
        let (lhs, rhs) = if gram {
            (x, x.transpose())
        } else {
            (x.transpose(), x)
        };
        let size = lhs.nrows();
        let mut out = Mat::<f64>::zeros(size, size);
        triangular::matmul(
            out.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            lhs,
            BlockStructure::Rectangular,
            rhs,
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        out
    }

    /// `(a, b)` with the covariance `a X'X + b I`; `frob_sq = ||X'X||_F^2` (needed for
    /// shrinkage only).
    fn covariance_scale(&self, shrinkage: Shrinkage, frob_sq: f64) -> (f64, f64) {
        let width = self.rows() as f64;
        match shrinkage {
            Shrinkage::None => (1.0 / (width - 1.0), 0.0),
            Shrinkage::LedoitWolf => {
                let delta = ledoit_wolf_shrinkage(self, frob_sq);
                let mu = self.sumsq.iter().sum::<f64>() / width / self.assets.len() as f64;
                ((1.0 - delta) / width, delta * mu)
            }
        }
    }

    fn scores(
        &self,
        weights: Option<&[f64]>,
        options: &DiversificationOptions,
        warm: &mut [f64],
        par: Par,
        interrupt: &Interrupt,
    ) -> WindowScores {
        let n = self.assets.len();
        let width = self.rows();
        let mut out = WindowScores {
            n_assets: n as u32,
            excluded_weight: 0.0,
            volatility: f64::NAN,
            diversification_ratio: f64::NAN,
            effective_n: f64::NAN,
            enb_pca: f64::NAN,
            enb_mt: f64::NAN,
            absorption_ratio: f64::NAN,
            avg_correlation: f64::NAN,
            not_converged: false,
        };
        // The included assets' weights, and the share of gross weight left out. The
        // weights are divided by the largest of them first: every score is scale-free,
        // but squares of weights near 1e-160 or 1e160 would under- or overflow.
        let mut scale = 1.0;
        let w: Option<Vec<f64>> = match weights {
            None => Some(vec![1.0; n]),
            Some(all) if all.first().is_some_and(|x| x.is_nan()) => {
                out.excluded_weight = f64::NAN;
                None
            }
            Some(all) => {
                scale = largest_abs(all);
                if !(scale > 0.0 && scale.is_finite()) {
                    scale = 1.0;
                }
                let gross: f64 = all.iter().map(|x| (x / scale).abs()).sum();
                let w: Vec<f64> = self.assets.iter().map(|&j| all[j] / scale).collect();
                let kept: f64 = w.iter().map(|x| x.abs()).sum();
                out.excluded_weight = if gross > 0.0 {
                    ((gross - kept) / gross).max(0.0)
                } else {
                    f64::NAN
                };
                Some(w)
            }
        };
        if n == 0 {
            return out;
        }

        // Correlation-based measures describe the sample correlations.
        let moving: Vec<usize> = (0..n).filter(|&k| self.sumsq[k] > 0.0).collect();
        let m = moving.len();
        if m >= 2 {
            let mut total = vec![0.0; width];
            for &k in &moving {
                let scale = 1.0 / self.sumsq[k].sqrt();
                for (t, x) in total.iter_mut().zip(self.column(k)) {
                    *t += scale * x;
                }
            }
            let sum_all = dot(&total, &total);
            out.avg_correlation = (sum_all - m as f64) / (m as f64 * (m as f64 - 1.0));
        }
        // X'X serves the sample correlation when the window is at least as long as the
        // universe; otherwise the correlation's spectrum comes from its Gram matrix.
        let gram = width < n;
        let cross = (!gram).then(|| self.cross(false, par));
        let correlation_eigenvalues = (m > 0).then(|| {
            let corr = match &cross {
                Some(cross) => correlation_of(cross.as_ref(), &moving, &self.sumsq),
                None => self.correlation_gram(&moving, par),
            };
            eigenvalues(corr.as_ref(), par)
        });
        if let Some(values) = &correlation_eigenvalues {
            let top = m.div_ceil(5);
            let absorbed: f64 = values.iter().rev().take(top).map(|v| v.max(0.0)).sum();
            out.absorption_ratio = absorbed / m as f64;
        }

        let Some(w) = w else { return out };
        let gross: f64 = w.iter().map(|x| x.abs()).sum();
        if gross > 0.0 {
            out.effective_n = gross * gross / dot(&w, &w);
        }
        // Portfolio scores describe the holdings: the assets with non-zero weight.
        let held: Vec<usize> = (0..n).filter(|&k| w[k] != 0.0).collect();
        if held.is_empty() {
            return out;
        }
        if held.len() == n {
            let spectrum = (m == n).then_some(correlation_eigenvalues).flatten();
            let portfolio = self.moments(cross, spectrum, options.shrinkage, par);
            self.portfolio_scores(&w, portfolio, options, warm, par, &mut out, interrupt);
        } else {
            let holdings = self.subset(&held);
            let w: Vec<f64> = held.iter().map(|&k| w[k]).collect();
            let portfolio = holdings.moments(None, None, options.shrinkage, par);
            holdings.portfolio_scores(&w, portfolio, options, warm, par, &mut out, interrupt);
        }
        // The volatility is of the weights as given.
        out.volatility *= scale;
        out
    }

    /// What the portfolio scores need: the smaller of `X'X` and the Gram matrix (`cross`
    /// when `X'X` is already at hand) and the covariance scale.
    fn moments(
        &self,
        cross: Option<Mat<f64>>,
        spectrum: Option<Vec<f64>>,
        shrinkage: Shrinkage,
        par: Par,
    ) -> Portfolio {
        let gram = self.rows() < self.assets.len();
        let cross = cross.unwrap_or_else(|| self.cross(gram, par));
        let frob_sq = match shrinkage {
            Shrinkage::None => 0.0,
            Shrinkage::LedoitWolf => frobenius_sq_lower(cross.as_ref()),
        };
        let (a, b) = self.covariance_scale(shrinkage, frob_sq);
        Portfolio {
            cross,
            gram,
            a,
            b,
            spectrum,
        }
    }

    /// The window restricted to some of its assets.
    fn subset(&self, keep: &[usize]) -> Window {
        let mut centred = Mat::<f64>::zeros(self.rows(), keep.len());
        for (i, &k) in keep.iter().enumerate() {
            centred.col_as_slice_mut(i).copy_from_slice(self.column(k));
        }
        Window {
            assets: keep.iter().map(|&k| self.assets[k]).collect(),
            centred,
            sumsq: keep.iter().map(|&k| self.sumsq[k]).collect(),
        }
    }

    /// Diversification ratio, PCA and minimum-torsion bets of the weights `w` (one per
    /// asset of the window, all non-zero). The minimum-torsion iteration gives up once
    /// `interrupt` is set.
    #[allow(clippy::too_many_arguments)]
    fn portfolio_scores(
        &self,
        w: &[f64],
        portfolio: Portfolio,
        options: &DiversificationOptions,
        warm: &mut [f64],
        par: Par,
        out: &mut WindowScores,
        interrupt: &Interrupt,
    ) {
        let Portfolio {
            cross,
            gram,
            a,
            b,
            spectrum,
        } = portfolio;
        let n = self.assets.len();
        let width = self.rows();
        let r = self.portfolio(w);
        let w_sq = dot(w, w);
        let variance = a * dot(&r, &r) + b * w_sq;
        if variance.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        out.volatility = variance.sqrt();
        let vols: Vec<f64> = self.sumsq.iter().map(|&s| (a * s + b).sqrt()).collect();
        out.diversification_ratio =
            w.iter().zip(&vols).map(|(x, s)| x.abs() * s).sum::<f64>() / variance.sqrt();
        out.enb_pca = if gram {
            self.pca_bets_gram(cross.as_ref(), &r, a, b, w_sq, par)
        } else {
            pca_bets(cross.as_ref(), w, a, b, par)
        };

        // Minimum torsion on the correlation of the (possibly shrunk) covariance.
        let risky: Vec<usize> = (0..n).filter(|&k| vols[k] > 0.0).collect();
        if risky.is_empty() {
            return;
        }
        // Without shrinkage the correlation has rank at most W - 1.
        if options.shrinkage == Shrinkage::None && risky.len() >= width {
            return;
        }
        let full;
        let cross_n = if gram {
            full = self.cross(false, par);
            full.as_ref()
        } else {
            cross.as_ref()
        };
        let corr = shrunk_correlation(cross_n, &risky, a, &vols);
        // Reuse the sample correlation's spectrum when it is the same matrix.
        let values = match (spectrum, gram, options.shrinkage) {
            (Some(values), false, Shrinkage::None) => values,
            _ => eigenvalues(corr.as_ref(), par),
        };
        if values[0].partial_cmp(&(DEFINITE_TOLERANCE * values[values.len() - 1]))
            != Some(std::cmp::Ordering::Greater)
        {
            return;
        }
        let v: Vec<f64> = risky.iter().map(|&k| vols[k] * w[k]).collect();
        let mut d: Vec<f64> = risky
            .iter()
            .map(|&k| {
                let prev = warm[self.assets[k]];
                if prev.is_finite() && prev > 0.0 {
                    prev
                } else {
                    1.0
                }
            })
            .collect();
        let shares =
            minimum_torsion_shares(corr.as_ref(), &v, &mut d, options.max_iter, par, interrupt);
        match shares {
            Some(shares) => {
                out.enb_mt = entropy_bets(&shares);
                for (&k, &dk) in risky.iter().zip(&d) {
                    warm[self.assets[k]] = dk;
                }
            }
            None => out.not_converged = true,
        }
    }

    /// The lower half of `Z Z'` with `Z` the unit-norm centred columns `moving`, whose
    /// non-zero eigenvalues are those of their correlation matrix.
    fn correlation_gram(&self, moving: &[usize], par: Par) -> Mat<f64> {
        let width = self.rows();
        let mut z = Mat::<f64>::zeros(width, moving.len());
        for (i, &k) in moving.iter().enumerate() {
            let scale = 1.0 / self.sumsq[k].sqrt();
            for (o, x) in z.col_as_slice_mut(i).iter_mut().zip(self.column(k)) {
                *o = scale * x;
            }
        }
        let mut out = Mat::<f64>::zeros(width, width);
        triangular::matmul(
            out.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            z.as_ref(),
            BlockStructure::Rectangular,
            z.transpose(),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        out
    }

    /// Meucci's effective number of principal bets from the Gram matrix `X X'`.
    ///
    /// With `X X' = U M U'`, the covariance `a X'X + b I` has eigenvectors
    /// `X' u_k / sqrt(mu_k)` with eigenvalues `a mu_k + b`, plus the null space of `X`
    /// with eigenvalue `b`. The portfolio's variance on component k is
    /// `(a + b / mu_k) (u_k' r)^2`; on the null space (one repeated eigenvalue, so one
    /// bet) it is `b` times the squared norm of `w` outside the row space of `X`.
    fn pca_bets_gram(
        &self,
        gram: MatRef<'_, f64>,
        r: &[f64],
        a: f64,
        b: f64,
        w_sq: f64,
        par: Par,
    ) -> f64 {
        let Some((values, vectors)) = eigen(gram, par) else {
            return f64::NAN;
        };
        let top = values.last().copied().unwrap_or(0.0).max(0.0);
        let mut shares = Vec::with_capacity(values.len() + 1);
        let mut inside = 0.0; // |projection of w on the row space of X|^2
        for (k, &mu) in values.iter().enumerate() {
            let proj = dot(vectors.col_as_slice(k), r);
            if b == 0.0 {
                shares.push(a * proj * proj);
            } else if mu > DEFINITE_TOLERANCE * top {
                shares.push((a + b / mu) * proj * proj);
                inside += proj * proj / mu;
            }
        }
        if b > 0.0 {
            shares.push(b * (w_sq - inside).max(0.0));
        }
        normalise_and_count(&mut shares)
    }
}

/// `||A||_F^2` of a symmetric matrix stored in its lower half.
fn frobenius_sq_lower(lower: MatRef<'_, f64>) -> f64 {
    let mut total = 0.0;
    for j in 0..lower.ncols() {
        for i in j..lower.nrows() {
            let x = lower[(i, j)];
            total += if i == j { x * x } else { 2.0 * x * x };
        }
    }
    total
}

/// Ledoit-Wolf shrinkage intensity, as scikit-learn's `ledoit_wolf_shrinkage` on
/// centred data: `frob_sq` is `||X'X||_F^2`.
fn ledoit_wolf_shrinkage(window: &Window, frob_sq: f64) -> f64 {
    let n = window.assets.len();
    if n <= 1 {
        return 0.0;
    }
    let samples = window.rows() as f64;
    let features = n as f64;
    let trace = window.sumsq.iter().sum::<f64>() / samples;
    let mu = trace / features;
    // sum_t (sum_j x_tj^2)^2: the sum of the entries of (X^2)'(X^2).
    let mut row_sq = vec![0.0; window.rows()];
    for k in 0..n {
        for (o, x) in row_sq.iter_mut().zip(window.column(k)) {
            *o += x * x;
        }
    }
    let beta_sum: f64 = row_sq.iter().map(|v| v * v).sum();
    let delta_sum = frob_sq / (samples * samples);
    let beta = (beta_sum / samples - delta_sum) / (features * samples);
    let delta = (delta_sum - 2.0 * mu * trace + features * mu * mu) / features;
    let beta = beta.min(delta);
    if beta == 0.0 {
        0.0
    } else {
        beta / delta
    }
}

/// The sample correlation of the columns `moving` from the lower half of `X'X`.
pub(crate) fn correlation_of(cross: MatRef<'_, f64>, moving: &[usize], sumsq: &[f64]) -> Mat<f64> {
    let inv: Vec<f64> = moving.iter().map(|&k| 1.0 / sumsq[k].sqrt()).collect();
    Mat::from_fn(moving.len(), moving.len(), |i, j| {
        if i == j {
            1.0
        } else {
            let (p, q) = (moving[i.max(j)], moving[i.min(j)]);
            cross[(p, q)] * inv[i] * inv[j]
        }
    })
}

/// The correlation of `a X'X + b I` over the columns `risky` (full, both halves).
fn shrunk_correlation(cross: MatRef<'_, f64>, risky: &[usize], a: f64, vols: &[f64]) -> Mat<f64> {
    Mat::from_fn(risky.len(), risky.len(), |i, j| {
        if i == j {
            1.0
        } else {
            let (p, q) = (risky[i].max(risky[j]), risky[i].min(risky[j]));
            a * cross[(p, q)] / (vols[risky[i]] * vols[risky[j]])
        }
    })
}

/// Meucci's effective number of principal bets from the lower half of `X'X`.
fn pca_bets(cross: MatRef<'_, f64>, w: &[f64], a: f64, b: f64, par: Par) -> f64 {
    let n = w.len();
    let cov = Mat::from_fn(n, n, |i, j| {
        if i >= j {
            a * cross[(i, j)] + if i == j { b } else { 0.0 }
        } else {
            0.0
        }
    });
    let Some((values, vectors)) = eigen(cov.as_ref(), par) else {
        return f64::NAN;
    };
    let mut shares: Vec<f64> = values
        .iter()
        .enumerate()
        .map(|(k, &lambda)| {
            let proj = dot(vectors.col_as_slice(k), w);
            lambda.max(0.0) * proj * proj
        })
        .collect();
    normalise_and_count(&mut shares)
}

/// `exp(entropy)` of the shares after scaling them to sum to 1.
fn normalise_and_count(shares: &mut [f64]) -> f64 {
    let total: f64 = shares.iter().sum();
    if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return f64::NAN;
    }
    shares.iter_mut().for_each(|p| *p /= total);
    entropy_bets(shares)
}

/// `exp(-sum p ln p)`, with `0 ln 0 = 0`.
fn entropy_bets(shares: &[f64]) -> f64 {
    let entropy: f64 = shares
        .iter()
        .filter(|&&p| p > 0.0)
        .map(|&p| -p * p.ln())
        .sum();
    entropy.exp()
}

/// Eigenvalues (ascending) and eigenvectors of the symmetric matrix whose lower half
/// is `lower`.
fn eigen(lower: MatRef<'_, f64>, par: Par) -> Option<(Vec<f64>, Mat<f64>)> {
    let n = lower.nrows();
    let mut values = faer::diag::Diag::<f64>::zeros(n);
    let mut vectors = Mat::<f64>::zeros(n, n);
    let mut buffer = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        ComputeEigenvectors::Yes,
        par,
        Default::default(),
    ));
    evd::self_adjoint_evd(
        lower,
        values.as_mut(),
        Some(vectors.as_mut()),
        par,
        MemStack::new(&mut buffer),
        Default::default(),
    )
    .ok()?;
    let values = (0..n).map(|i| values[i]).collect();
    Some((values, vectors))
}

/// Eigenvalues (ascending) of the symmetric matrix whose lower half is `lower`; NaN
/// if the solver does not converge.
fn eigenvalues(lower: MatRef<'_, f64>, par: Par) -> Vec<f64> {
    let n = lower.nrows();
    let mut values = faer::diag::Diag::<f64>::zeros(n);
    let mut buffer = MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(
        n,
        ComputeEigenvectors::No,
        par,
        Default::default(),
    ));
    match evd::self_adjoint_evd(
        lower,
        values.as_mut(),
        None,
        par,
        MemStack::new(&mut buffer),
        Default::default(),
    ) {
        Ok(()) => (0..n).map(|i| values[i]).collect(),
        Err(_) => vec![f64::NAN; n],
    }
}

/// Risk shares of the minimum-torsion bets (Meucci, Santangelo & Deguest 2013).
///
/// With `C` the correlation matrix and `v = sigma * w` the volatility-scaled weights,
/// the exact minimum-torsion scales `d` are the fixed point of
/// `d_n <- (U^(1/2))_nn / d_n` with `U = D C D`, which is the published iteration
/// `d <- diag(U^(-1/2) D C)` written without inverses. The torsion (in correlation
/// units) is `T = D U^(-1/2) D`, its factors have variances `d^2`, and the portfolio's
/// exposures to them are `T^(-1) v`, so the risk share of factor n is
/// `(U^(1/2) D^(-1) v)_n^2 / v'Cv`; these are >= 0 and sum to 1 by construction.
///
/// `d` holds the starting point on entry (the previous window's solution, or 1) and
/// the solution on exit. `None` if the iteration does not converge in `max_iter`
/// steps, or once `interrupt` is set (each step is an eigendecomposition).
fn minimum_torsion_shares(
    corr: MatRef<'_, f64>,
    v: &[f64],
    d: &mut [f64],
    max_iter: usize,
    par: Par,
    interrupt: &Interrupt,
) -> Option<Vec<f64>> {
    let n = v.len();
    let mut anderson = Anderson::new(n);
    let mut u = Mat::<f64>::zeros(n, n);
    let mut next = vec![0.0; n];
    for _ in 0..max_iter {
        if interrupt.is_set() {
            return None;
        }
        for j in 0..n {
            for i in j..n {
                u[(i, j)] = d[i] * corr[(i, j)] * d[j];
            }
        }
        let (values, vectors) = eigen(u.as_ref(), par)?;
        let roots: Vec<f64> = values.iter().map(|&x| x.max(0.0).sqrt()).collect();
        // diag(U^(1/2))_n = sum_k Q_nk^2 sqrt(mu_k)
        next.iter_mut().for_each(|x| *x = 0.0);
        for (k, &root) in roots.iter().enumerate() {
            for (o, &q) in next.iter_mut().zip(vectors.col_as_slice(k)) {
                *o += q * q * root;
            }
        }
        for (o, &dn) in next.iter_mut().zip(d.iter()) {
            *o /= dn;
        }
        let scale = d.iter().fold(0.0f64, |acc, x| acc.max(x.abs()));
        let change = next
            .iter()
            .zip(d.iter())
            .fold(0.0f64, |acc, (g, x)| acc.max((g - x).abs()));
        if !change.is_finite() {
            return None;
        }
        if change <= TORSION_TOLERANCE * scale {
            // Shares at the current d: U^(1/2) D^(-1) v = Q (sqrt(mu) * Q'(v / d)).
            let scaled: Vec<f64> = v.iter().zip(d.iter()).map(|(x, dn)| x / dn).collect();
            let mut exposure = vec![0.0; n];
            for (k, &root) in roots.iter().enumerate() {
                let q = vectors.col_as_slice(k);
                let c = root * dot(q, &scaled);
                for (o, &qn) in exposure.iter_mut().zip(q) {
                    *o += c * qn;
                }
            }
            let mut shares: Vec<f64> = exposure.iter().map(|x| x * x).collect();
            let total: f64 = shares.iter().sum();
            if total.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return None;
            }
            shares.iter_mut().for_each(|p| *p /= total);
            return Some(shares);
        }
        anderson.step(d, &next);
    }
    None
}

/// Anderson acceleration (type II) of the fixed-point iteration `x <- g(x)`: the next
/// point mixes the last few images so that their residuals `g(x) - x` cancel in the
/// least-squares sense. Falls back to the plain step when the mix would leave the
/// positive orthant.
struct Anderson {
    /// Last images g(x_i) and residuals g(x_i) - x_i, oldest first.
    images: Vec<Vec<f64>>,
    residuals: Vec<Vec<f64>>,
    n: usize,
}

impl Anderson {
    fn new(n: usize) -> Self {
        Anderson {
            images: Vec::new(),
            residuals: Vec::new(),
            n,
        }
    }

    /// Replaces `x` by the next iterate, given its image `g`.
    fn step(&mut self, x: &mut [f64], g: &[f64]) {
        let residual: Vec<f64> = g.iter().zip(x.iter()).map(|(g, x)| g - x).collect();
        self.images.push(g.to_vec());
        self.residuals.push(residual);
        if self.images.len() > ANDERSON_DEPTH + 1 {
            self.images.remove(0);
            self.residuals.remove(0);
        }
        let depth = self.images.len() - 1;
        if depth == 0 {
            x.copy_from_slice(g);
            return;
        }
        // Differences of consecutive residuals and images.
        let last = &self.residuals[depth];
        let df: Vec<Vec<f64>> = (0..depth)
            .map(|i| diff(&self.residuals[i + 1], &self.residuals[i]))
            .collect();
        // Normal equations (DF'DF + eps I) gamma = DF' f, solved by Gaussian elimination.
        let mut system = vec![vec![0.0; depth + 1]; depth];
        for i in 0..depth {
            for j in 0..depth {
                system[i][j] = dot(&df[i], &df[j]);
            }
            system[i][depth] = dot(&df[i], last);
        }
        let ridge = 1e-14 * (0..depth).map(|i| system[i][i]).fold(0.0, f64::max);
        for (i, row) in system.iter_mut().enumerate() {
            row[i] += ridge;
        }
        let Some(gamma) = solve_small(system) else {
            self.restart(x, g);
            return;
        };
        let mut candidate = g.to_vec();
        for (i, &c) in gamma.iter().enumerate() {
            let dg = diff(&self.images[i + 1], &self.images[i]);
            for (o, d) in candidate.iter_mut().zip(&dg) {
                *o -= c * d;
            }
        }
        if candidate.iter().all(|v| v.is_finite() && *v > 0.0) {
            x.copy_from_slice(&candidate);
        } else {
            self.restart(x, g);
        }
    }

    fn restart(&mut self, x: &mut [f64], g: &[f64]) {
        self.images.clear();
        self.residuals.clear();
        debug_assert_eq!(g.len(), self.n);
        x.copy_from_slice(g);
    }
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Solves a small dense system given as rows `[A | b]` with partial pivoting.
fn solve_small(mut rows: Vec<Vec<f64>>) -> Option<Vec<f64>> {
    let n = rows.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| rows[i][col].abs().total_cmp(&rows[j][col].abs()))?;
        if rows[pivot][col] == 0.0 || !rows[pivot][col].is_finite() {
            return None;
        }
        rows.swap(col, pivot);
        let (upper, lower) = rows.split_at_mut(col + 1);
        let pivot_row = &upper[col];
        for row in lower.iter_mut() {
            let factor = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= factor * p;
            }
        }
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let tail: f64 = (i + 1..n).map(|j| rows[i][j] * x[j]).sum();
        x[i] = (rows[i][n] - tail) / rows[i][i];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    /// Found by fuzz/ (risk_contributions, diversification): returns near 1e299 gave an
    /// infinite volatility; they are now refused, naming the row and column.
    #[test]
    fn returns_whose_squares_overflow_are_refused() {
        let big = [1.2573e299, -1.3210e299];
        let small = [0.01, -0.02];
        let columns: [&[f64]; 2] = [&small, &big];
        let too_large = Error::OutOfRange {
            input: "returns",
            row: 0,
            column: 1,
        };
        let weights = [0.5, 0.5];
        let risk = risk_contributions(&columns, 2, &weights, Shrinkage::None);
        assert_eq!(risk.err(), Some(too_large.clone()));
        let scores = diversification(
            &columns,
            2,
            &[1],
            Weights::Equal,
            &options(2),
            &Interrupt::new(),
        );
        assert_eq!(scores.err(), Some(too_large));
    }

    fn options(width: usize) -> DiversificationOptions {
        DiversificationOptions {
            width,
            shrinkage: Shrinkage::None,
            max_iter: 1000,
        }
    }

    /// Columns of a W-row matrix that are centred and mutually orthogonal, scaled.
    fn orthogonal_columns(width: usize, scales: &[f64]) -> Vec<Vec<f64>> {
        // Cosines of distinct frequencies over a full period are orthogonal and centred.
        scales
            .iter()
            .enumerate()
            .map(|(j, s)| {
                (0..width)
                    .map(|t| {
                        let angle = 2.0 * std::f64::consts::PI * ((j + 1) * t) as f64;
                        s * (angle / width as f64).cos()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn weights_that_are_not_finite_are_refused() {
        // Found by the fuzz target: an infinite weight gave infinite scores.
        let columns = orthogonal_columns(16, &[1.0, 2.0]);
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let call =
            |weights| diversification(&slices, 16, &[15], weights, &options(16), &Interrupt::new());
        let error = call(Weights::Static(&[0.5, f64::INFINITY])).unwrap_err();
        assert!(error.to_string().contains("asset 1"), "{error}");
        assert!(call(Weights::PerWindow(&[f64::NAN, f64::NAN])).is_ok());
        let error = call(Weights::PerWindow(&[0.5, f64::NAN])).unwrap_err();
        assert!(error.to_string().contains("of window 0"), "{error}");
        let risk = risk_contributions(&slices, 16, &[f64::NAN, 0.5], Shrinkage::None);
        assert!(risk.is_err());
    }

    fn run(columns: &[Vec<f64>], weights: Weights<'_>, width: usize) -> Scores {
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let n_rows = columns[0].len();
        let ends: Vec<usize> = (width - 1..n_rows).collect();
        diversification(
            &slices,
            n_rows,
            &ends,
            weights,
            &options(width),
            &Interrupt::new(),
        )
        .unwrap()
    }

    #[test]
    fn uncorrelated_equal_risk_assets_are_n_bets() {
        let n = 6;
        let columns = orthogonal_columns(64, &vec![0.02; n]);
        let scores = run(&columns, Weights::Equal, 64);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-10 * b;
        assert!(close(scores.enb_mt[0], n as f64), "{}", scores.enb_mt[0]);
        assert!(close(scores.effective_n[0], n as f64));
        assert!(close(scores.diversification_ratio[0], (n as f64).sqrt()));
        assert!(scores.avg_correlation[0].abs() < 1e-12);
    }

    #[test]
    fn inverse_volatility_weights_on_uncorrelated_assets_are_n_principal_bets() {
        let scales = [0.01, 0.02, 0.03, 0.05];
        let columns = orthogonal_columns(48, &scales);
        let weights: Vec<f64> = scales.iter().map(|s| 1.0 / s).collect();
        let scores = run(&columns, Weights::Static(&weights), 48);
        assert!((scores.enb_pca[0] - 4.0).abs() < 1e-10);
        assert!((scores.enb_mt[0] - 4.0).abs() < 1e-10);
    }

    #[test]
    fn scaling_the_weights_changes_no_score() {
        let scales = [0.01, 0.02, 0.03, 0.05];
        let columns = orthogonal_columns(48, &scales);
        let weights = [0.4, -0.1, 0.3, 0.2];
        let base = run(&columns, Weights::Static(&weights), 48);
        for factor in [1e-160, 1e160] {
            let scaled: Vec<f64> = weights.iter().map(|w| w * factor).collect();
            let scores = run(&columns, Weights::Static(&scaled), 48);
            for (a, b) in [
                (
                    scores.diversification_ratio[0],
                    base.diversification_ratio[0],
                ),
                (scores.effective_n[0], base.effective_n[0]),
                (scores.enb_pca[0], base.enb_pca[0]),
                (scores.enb_mt[0], base.enb_mt[0]),
                (scores.volatility[0] / factor, base.volatility[0]),
            ] {
                assert!((a - b).abs() <= 1e-12 * b.abs(), "{factor}: {a} vs {b}");
            }
            let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
            let plain = risk_contributions(&slices, 48, &weights, Shrinkage::None).unwrap();
            let tiny = risk_contributions(&slices, 48, &scaled, Shrinkage::None).unwrap();
            for j in 0..4 {
                let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs();
                assert!(close(tiny.percent[j], plain.percent[j]));
                assert!(close(tiny.marginal[j], plain.marginal[j]));
                assert!(close(tiny.component[j] / factor, plain.component[j]));
            }
        }
    }

    #[test]
    fn one_asset_is_one_bet() {
        let columns = vec![vec![0.01, -0.02, 0.005, 0.03, -0.01]];
        let scores = run(&columns, Weights::Equal, 5);
        for value in [
            scores.enb_pca[0],
            scores.enb_mt[0],
            scores.effective_n[0],
            scores.diversification_ratio[0],
            scores.absorption_ratio[0],
        ] {
            assert!((value - 1.0).abs() < 1e-14, "{value}");
        }
        assert!(scores.avg_correlation[0].is_nan());
    }

    #[test]
    fn torsion_shares_are_a_distribution_and_the_fixed_point_holds() {
        let corr = Mat::from_fn(3, 3, |i, j| {
            if i == j {
                1.0
            } else {
                0.3 + 0.1 * (i + j) as f64
            }
        });
        let v = [0.5, 0.3, 0.2];
        let mut d = vec![1.0; 3];
        let shares =
            minimum_torsion_shares(corr.as_ref(), &v, &mut d, 1000, Par::Seq, &Interrupt::new())
                .unwrap();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        assert!(shares.iter().all(|&p| p >= 0.0));
        // d_n^2 = (sqrt(D C D))_nn at the solution.
        let u = Mat::from_fn(3, 3, |i, j| d[i] * corr[(i, j)] * d[j]);
        let (values, vectors) = eigen(u.as_ref(), Par::Seq).unwrap();
        for n in 0..3 {
            let diag: f64 = (0..3)
                .map(|k| vectors[(n, k)].powi(2) * values[k].sqrt())
                .sum();
            assert!((diag - d[n] * d[n]).abs() < 1e-11);
        }
    }

    #[test]
    fn too_few_rows_leave_torsion_undefined_but_pca_defined() {
        let columns: Vec<Vec<f64>> = (0..8)
            .map(|j| {
                (0..5)
                    .map(|t| (((t * 7 + j * 3) % 11) as f64 - 5.0) * 0.01)
                    .collect()
            })
            .collect();
        let scores = run(&columns, Weights::Equal, 5);
        assert!(scores.enb_mt[0].is_nan());
        assert!(scores.enb_pca[0].is_finite() && scores.enb_pca[0] >= 1.0);
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let shrunk = DiversificationOptions {
            shrinkage: Shrinkage::LedoitWolf,
            ..options(5)
        };
        let scores =
            diversification(&slices, 5, &[4], Weights::Equal, &shrunk, &Interrupt::new()).unwrap();
        assert!(scores.enb_mt[0].is_finite());
    }

    #[test]
    fn missing_and_constant_assets() {
        let mut columns = orthogonal_columns(16, &[0.01, 0.02, 0.03]);
        columns[1][3] = f64::NAN;
        columns[2] = vec![0.001; 16];
        let weights = [1.0, 2.0, 1.0];
        let scores = run(&columns, Weights::Static(&weights), 16);
        assert_eq!(scores.n_assets[0], 2);
        assert!((scores.excluded_weight[0] - 0.5).abs() < 1e-15);
        // The constant asset carries no risk: one risky asset, one bet.
        assert!((scores.enb_mt[0] - 1.0).abs() < 1e-14);
        assert!(scores.absorption_ratio[0] == 1.0);
    }

    #[test]
    fn bad_input_is_an_error() {
        let columns = [vec![0.0, f64::INFINITY, 0.1]];
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let err = diversification(
            &slices,
            3,
            &[2],
            Weights::Equal,
            &options(3),
            &Interrupt::new(),
        )
        .unwrap_err();
        assert!(matches!(
            err,
            Error::NonFinite {
                row: 1,
                column: 0,
                ..
            }
        ));
        let columns = [vec![0.0, 0.2, 0.1]];
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        assert!(diversification(
            &slices,
            3,
            &[2],
            Weights::Equal,
            &options(4),
            &Interrupt::new()
        )
        .is_err());
        assert!(diversification(
            &slices,
            3,
            &[1],
            Weights::Equal,
            &options(3),
            &Interrupt::new()
        )
        .is_err());
        assert!(diversification(
            &slices,
            3,
            &[2],
            Weights::Equal,
            &options(1),
            &Interrupt::new()
        )
        .is_err());
    }

    #[test]
    fn a_set_interrupt_stops_the_call_with_an_error() {
        let columns = orthogonal_columns(40, &[0.01, 0.02, 0.03]);
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let ends: Vec<usize> = (9..40).collect();
        let run = |stop: &Interrupt| {
            diversification(&slices, 40, &ends, Weights::Equal, &options(10), stop)
        };
        assert_eq!(run(&Interrupt::new()).unwrap().end_row, ends);
        let stop = Interrupt::new();
        stop.set();
        assert!(matches!(run(&stop), Err(Error::Interrupted)));
        // The minimum-torsion iteration gives up too.
        let corr = Mat::<f64>::identity(3, 3);
        let mut d = vec![1.0; 3];
        let v = [0.5, 0.3, 0.2];
        assert!(minimum_torsion_shares(corr.as_ref(), &v, &mut d, 9, Par::Seq, &stop).is_none());
    }
}
