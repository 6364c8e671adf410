//! One property per kernel entry point, driven by arbitrary bytes: the shapes, the
//! options and where NaN, infinities, outliers (1e3..1e12) and extreme magnitudes
//! (1e-300..1e300) go come from the bytes; the bulk of the data comes from a small
//! generator seeded by them, so that the fuzzer steers the structure and the data
//! stay well conditioned where the property needs an exact reference.
//!
//! Every property: no panic; on `Ok`, outputs of the right shape, each finite or NaN
//! (never infinite). `rolling_ols` also checks every window that no outlier or
//! special value touches against a direct QR solve of that window.

use factorcore::brinson::{self, BrinsonInput, BrinsonMethod, BrinsonOptions, Side};
use factorcore::clusters::{self, Linkage};
use factorcore::diversification::{self, DiversificationOptions, Shrinkage, Weights};
use factorcore::exposures::{self, Columns, RollingOlsOptions};
use factorcore::factor_attribution::{self, FactorInput};
use factorcore::groups::{date_runs, Keys};
use factorcore::interrupt::Interrupt;
use factorcore::linking::{self, LinkMethod, Linking, SectorRows};
use ndarray::Array2;

/// Reads the fuzzer's bytes; zeros once they run out.
pub struct Bytes<'a> {
    data: &'a [u8],
    rng: u64,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for &b in data.iter().take(8) {
            seed = (seed ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Self { data, rng: seed }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        let v = usize::from(self.byte()) << 8 | usize::from(self.byte());
        lo + v % (hi - lo + 1)
    }

    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// splitmix64, for the bulk of the data.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * self.uniform()).cos()
    }

    /// A value of magnitude 10^(lo..=hi) with a random sign.
    pub fn power(&mut self, lo: i32, hi: i32) -> f64 {
        let e = lo + (self.range(0, (hi - lo) as usize) as i32);
        let sign = if self.flag() { -1.0 } else { 1.0 };
        sign * (1.0 + self.uniform()) * 10f64.powi(e)
    }
}

/// What an event did to a cell or a column.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    Nan,
    Inf,
    /// 1e3..1e12, signed.
    Outlier,
    /// A single value 1e-300..1e300.
    Extreme,
    Zero,
}

/// Sprinkles events over a (rows x cols) column-major matrix; returns, per column,
/// the rows an event touched (in any column when `shared`).
pub fn sprinkle(g: &mut Bytes<'_>, columns: &mut [Vec<f64>], max_events: usize) -> Vec<usize> {
    let mut touched = Vec::new();
    if columns.is_empty() || columns[0].is_empty() {
        return touched;
    }
    let rows = columns[0].len();
    for _ in 0..g.range(0, max_events) {
        let (r, c) = (g.range(0, rows - 1), g.range(0, columns.len() - 1));
        let v = match event(g) {
            Event::Nan => f64::NAN,
            Event::Inf => {
                if g.flag() {
                    f64::INFINITY
                } else {
                    f64::NEG_INFINITY
                }
            }
            Event::Outlier => g.power(3, 12),
            Event::Extreme => g.power(-300, 300),
            Event::Zero => 0.0,
        };
        columns[c][r] = v;
        touched.push(c * rows + r);
    }
    touched
}

fn event(g: &mut Bytes<'_>) -> Event {
    match g.byte() % 8 {
        0 | 1 => Event::Nan,
        2 => Event::Inf,
        3 | 4 => Event::Outlier,
        5 | 6 => Event::Extreme,
        _ => Event::Zero,
    }
}

/// A scale for a whole column: mostly 1, sometimes 10^(-300..300).
fn column_scale(g: &mut Bytes<'_>) -> f64 {
    match g.byte() % 4 {
        0 => g.power(-300, 300).abs(),
        1 => g.power(-8, 8).abs(),
        _ => 1.0,
    }
}

fn all_finite_or_nan(values: impl IntoIterator<Item = f64>, what: &str) {
    for v in values {
        assert!(!v.is_infinite(), "{what}: an infinite output");
    }
}

// ---------------------------------------------------------------------------------
// rolling_ols

/// A direct solve of one window: coefficients, their standard errors, r2, resid_vol,
/// and the smallest share of a (column-normalised) regressor left after projecting
/// out the earlier ones (how close to collinear the window is).
pub struct Direct {
    pub coef: Vec<f64>,
    pub se: Vec<f64>,
    pub r2: f64,
    /// The total sum of squares r2 is relative to.
    pub tss: f64,
    pub resid_vol: f64,
    pub least_share: f64,
}

/// Weighted least squares of the rows `rows` (weights `w`) by QR.
pub fn direct_solve(a_rows: &[Vec<f64>], y: &[f64], w: &[f64], intercept: bool) -> Option<Direct> {
    use faer::linalg::solvers::DenseSolveCore;
    use faer::prelude::*;
    let n = y.len();
    let p = a_rows.first()?.len();
    if n <= p {
        return None;
    }
    let a = Mat::<f64>::from_fn(n, p, |i, k| w[i].sqrt() * a_rows[i][k]);
    let b = Mat::<f64>::from_fn(n, 1, |i, _| w[i].sqrt() * y[i]);
    let qr = a.qr();
    let coef = qr.solve_lstsq(&b);
    let coef: Vec<f64> = (0..p).map(|k| coef[(k, 0)]).collect();
    let fitted = |i: usize| (0..p).map(|k| a_rows[i][k] * coef[k]).sum::<f64>();
    let ssr: f64 = (0..n).map(|i| w[i] * (y[i] - fitted(i)).powi(2)).sum();
    let sw: f64 = w.iter().sum();
    let mean = if intercept {
        (0..n).map(|i| w[i] * y[i]).sum::<f64>() / sw
    } else {
        0.0
    };
    let tss: f64 = (0..n).map(|i| w[i] * (y[i] - mean).powi(2)).sum();
    let s2 = ssr / (n - p) as f64;
    let r = qr.thin_R().to_owned();
    let least_share = (0..p)
        .map(|k| {
            let norm2: f64 = (0..n).map(|i| a[(i, k)].powi(2)).sum();
            r[(k, k)].powi(2) / norm2
        })
        .fold(f64::INFINITY, f64::min);
    let r_inverse = r.partial_piv_lu().inverse();
    let se = (0..p)
        .map(|k| (s2 * (0..p).map(|m| r_inverse[(k, m)].powi(2)).sum::<f64>()).sqrt())
        .collect();
    Some(Direct {
        coef,
        se,
        r2: 1.0 - ssr / tss,
        tss,
        resid_vol: s2.sqrt(),
        least_share,
    })
}

pub fn rolling_ols(data: &[u8]) {
    let mut g = Bytes::new(data);
    let t_len = g.range(1, 90);
    let n = g.range(1, 11);
    let k = g.range(0, 3);
    let intercept = g.flag() || k == 0 && g.flag();
    let p = k + usize::from(intercept);
    let window = match g.byte() % 4 {
        0 => None,
        // Sometimes out of range, to exercise the refusals.
        1 => Some(g.range(0, t_len + 2)),
        _ => Some(g.range(p.max(1), t_len.max(p.max(1)))),
    };
    let min_periods = match g.byte() % 4 {
        0 => Some(g.range(0, t_len + 1)),
        _ => None,
    };
    let halflife = match g.byte() % 6 {
        0 => Some(g.power(-3, 3).abs()),
        1 => Some(match g.byte() % 4 {
            0 => f64::NAN,
            1 => 0.0,
            2 => -1.0,
            _ => f64::INFINITY,
        }),
        _ => None,
    };
    let options = RollingOlsOptions {
        window,
        min_periods,
        halflife,
        intercept,
        stats: g.flag() || g.flag(),
        tstats: g.flag(),
    };
    // Factors: normal around a common mean, one scale per column.
    let mean = if g.flag() { g.power(-3, 2) } else { 0.0 };
    let mut x: Vec<Vec<f64>> = (0..k)
        .map(|_| {
            let s = column_scale(&mut g);
            (0..t_len).map(|_| s * (mean + g.normal())).collect()
        })
        .collect();
    if k > 0 && g.byte() % 8 == 0 {
        // A constant factor: collinear with the intercept.
        let c = g.range(0, k - 1);
        x[c].iter_mut().for_each(|v| *v = 1.5);
    }
    let betas: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            (0..k)
                .map(|f| {
                    (1.0 + 0.5 * g.normal())
                        / x[f].iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-300)
                })
                .collect()
        })
        .collect();
    let mut y: Vec<Vec<f64>> = (0..n)
        .map(|j| {
            let s = column_scale(&mut g);
            (0..t_len)
                .map(|t| {
                    let fit: f64 = (0..k).map(|f| betas[j][f] * x[f][t]).sum();
                    s * (0.3 + fit + 0.1 * g.normal())
                })
                .collect()
        })
        .collect();
    // Gaps: a late starter, random missing returns.
    if g.flag() {
        let j = g.range(0, n - 1);
        let late = g.range(0, t_len - 1);
        y[j][..late].iter_mut().for_each(|v| *v = f64::NAN);
    }
    let hit_x = sprinkle(&mut g, &mut x, 3);
    let hit_y = sprinkle(&mut g, &mut y, 4);
    let x_rows: Vec<usize> = hit_x.iter().map(|i| i % t_len).collect();
    let touched = |t: usize, j: usize| x_rows.contains(&t) || hit_y.contains(&(j * t_len + t));

    if std::env::var_os("FUZZ_DUMP").is_some() {
        // For turning a failure into a plain regression test.
        eprintln!("options: {options:?}\nx (by factor): {x:?}\ny (by asset): {y:?}");
    }
    let xm = Array2::from_shape_fn((t_len, k), |(t, f)| x[f][t]);
    let ym = Array2::from_shape_fn((t_len, n), |(t, j)| y[j][t]);
    let result = if g.flag() {
        exposures::rolling_ols(&ym.view(), xm.view(), &options)
    } else {
        let columns = Columns::new(y.iter().map(|c| c.as_slice()).collect(), t_len).unwrap();
        exposures::rolling_ols(&columns, xm.view(), &options)
    };
    let Ok(out) = result else { return };
    assert_eq!(out.coef.dim(), (p, t_len, n));
    assert_eq!(out.n_obs.dim(), (t_len, n));
    assert_eq!(
        out.tstat.as_ref().map(|a| a.dim()),
        options.tstats.then_some((p, t_len, n))
    );
    assert_eq!(out.r2.is_some(), options.stats);
    let (Some(r2), Some(resid_vol)) = (out.r2.as_ref(), out.resid_vol.as_ref()) else {
        return;
    };
    assert_eq!(r2.dim(), (t_len, n));
    assert_eq!(resid_vol.dim(), (t_len, n));
    all_finite_or_nan(out.coef.iter().copied(), "coef");
    all_finite_or_nan(r2.iter().copied(), "r2");
    all_finite_or_nan(resid_vol.iter().copied(), "resid_vol");
    if let Some(ts) = &out.tstat {
        all_finite_or_nan(ts.iter().copied(), "tstat");
    }
    for v in r2.iter().filter(|v| !v.is_nan()) {
        assert!((-1e-12..=1.0 + 1e-12).contains(v), "r2 {v} outside [0, 1]");
    }
    for v in resid_vol.iter().filter(|v| !v.is_nan()) {
        assert!(*v >= 0.0, "negative resid_vol {v}");
    }

    // Windows free of events against a direct solve.
    let lambda = options.halflife.map_or(1.0, |h| 0.5f64.powf(1.0 / h));
    let min_periods = options.min_periods.unwrap_or(window.unwrap_or(p + 1));
    for t in 0..t_len {
        let first = window.map_or(0, |w| (t + 1).saturating_sub(w));
        for j in 0..n {
            let rows: Vec<usize> = (first..=t)
                .filter(|&r| !y[j][r].is_nan() && (0..k).all(|f| !x[f][r].is_nan()))
                .collect();
            let at = format!("t={t} j={j} {options:?}");
            assert_eq!(out.n_obs[[t, j]] as usize, rows.len(), "{at}: n_obs");
            if (first..=t).any(|r| touched(r, j)) {
                continue;
            }
            let got = out.coef[[0, t, j]];
            if rows.len() < min_periods {
                assert!(got.is_nan(), "{at}: {got} from too few rows");
                continue;
            }
            let a_rows: Vec<Vec<f64>> = rows
                .iter()
                .map(|&r| {
                    let mut row = Vec::with_capacity(p);
                    if intercept {
                        row.push(1.0);
                    }
                    row.extend((0..k).map(|f| x[f][r]));
                    row
                })
                .collect();
            let ys: Vec<f64> = rows.iter().map(|&r| y[j][r]).collect();
            let w: Vec<f64> = rows.iter().map(|&r| lambda.powi((t - r) as i32)).collect();
            let Some(d) = direct_solve(&a_rows, &ys, &w, intercept) else {
                continue;
            };
            if d.coef.iter().chain(&d.se).any(|v| !v.is_finite()) || d.least_share < 1e-6 {
                // Too close to collinear (or under/overflowing) for the reference to
                // settle what the right number is.
                continue;
            }
            assert!(!got.is_nan(), "{at}: NaN, direct solve {:?}", d.coef);
            for kk in 0..p {
                let got = out.coef[[kk, t, j]];
                let want = d.coef[kk];
                let tolerance = 1e-8 * (want.abs() + d.se[kk]);
                assert!(
                    (got - want).abs() <= tolerance,
                    "{at}: coef {kk} got {got:e}, want {want:e} (se {:e}, rel {:e})",
                    d.se[kk],
                    (got - want).abs() / want.abs()
                );
            }
            // The residual sum of squares is formed from the window sums as y'Wy - b'X'Wy,
            // so it carries the solution's rounding: about eps / (least share) of y'Wy,
            // with y as the kernel centres it (on a median, which lies within the
            // column's range). A perfect fit is one within that (see `perfect_fit_cut`).
            let reach = y[j]
                .iter()
                .filter(|v| !v.is_nan())
                .fold(0.0, |m, v| v.abs().max(m));
            let yy: f64 = ys
                .iter()
                .zip(&w)
                .map(|(v, w)| w * (v.abs() + reach).powi(2))
                .sum();
            let dof = (rows.len() - p) as f64;
            let want_ssr = d.resid_vol.powi(2) * dof;
            let rounding = 1e3 * f64::EPSILON * yy / d.least_share;
            let got_vol = resid_vol[[t, j]];
            let ssr_error = (got_vol.powi(2) * dof - want_ssr).abs();
            assert!(
                ssr_error <= 1e-8 * want_ssr + rounding,
                "{at}: resid_vol got {got_vol:e}, want {:e} (SSR off by {ssr_error:e}, rounding {rounding:e})",
                d.resid_vol,
            );
            if d.r2.is_finite() && !r2[[t, j]].is_nan() {
                // A perfect fit has no SSR to derive the total sum of squares from.
                let tolerance = 1e-8 + rounding / d.tss;
                assert!(
                    (r2[[t, j]] - d.r2).abs() <= tolerance,
                    "{at}: r2 got {:e}, want {:e} (tolerance {tolerance:e})",
                    r2[[t, j]],
                    d.r2
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Long tables (brinson, linking, factor attribution)

/// Sorted small dates (so some repeat), and `date_runs` over them.
fn dates(g: &mut Bytes<'_>, rows: usize) -> Vec<usize> {
    let mut d: Vec<u8> = (0..rows).map(|_| g.byte() % 6).collect();
    d.sort_unstable();
    date_runs(&d).expect("sorted")
}

/// A column of `rows` values around `centre`, with events.
fn column(g: &mut Bytes<'_>, rows: usize, centre: f64, spread: f64) -> Vec<f64> {
    let s = column_scale(g);
    let mut c = vec![(0..rows)
        .map(|_| s * (centre + spread * g.normal()))
        .collect::<Vec<_>>()];
    sprinkle(g, &mut c, 2);
    c.pop().unwrap()
}

pub fn brinson(data: &[u8]) {
    let mut g = Bytes::new(data);
    let rows = g.range(0, 60);
    let date_starts = dates(&mut g, rows);
    let sectors: Vec<u8> = (0..rows).map(|_| g.byte() % 5).collect();
    let holdings = g.flag();
    let assets: Vec<u64> = (0..rows).map(|_| u64::from(g.byte() % 12)).collect();
    let wp = column(&mut g, rows, 0.1, 0.05);
    let wb = column(&mut g, rows, 0.1, 0.05);
    let rp = column(&mut g, rows, 0.01, 0.05);
    let rb = if holdings {
        rp.clone()
    } else {
        column(&mut g, rows, 0.01, 0.05)
    };
    let method = match g.byte() % 3 {
        0 => BrinsonMethod::Fachler,
        1 => BrinsonMethod::HoodBeebower,
        _ => BrinsonMethod::Geometric,
    };
    let input = BrinsonInput {
        date_starts: &date_starts,
        sectors: Keys::U8(&sectors),
        assets: holdings.then_some(Keys::U64(&assets)),
        portfolio: Side {
            weight: &wp,
            ret: &rp,
            names: ("wp", "rp"),
        },
        benchmark: Side {
            weight: &wb,
            ret: &rb,
            names: ("wb", "rb"),
        },
    };
    let options = BrinsonOptions {
        method,
        top_down: g.flag(),
    };
    let Ok(out) = brinson::brinson(&input, options, &Interrupt::new()) else {
        return;
    };
    let periods = date_starts.len() - 1;
    assert_eq!(out.cells.len(), periods * out.n_sectors);
    assert_eq!(out.sector_rows.len(), out.n_sectors);
    for c in &out.cells {
        all_finite_or_nan(
            [
                c.wp,
                c.wb,
                c.rp,
                c.rb,
                c.allocation,
                c.selection,
                c.interaction,
            ],
            "brinson",
        );
    }
}

pub fn linking(data: &[u8]) {
    let mut g = Bytes::new(data);
    let periods = g.range(0, 40);
    let n_effects = g.range(0, 6);
    let rp = column(&mut g, periods, 0.01, 0.05);
    let rb = column(&mut g, periods, 0.01, 0.05);
    let method = match g.byte() % 4 {
        0 => LinkMethod::Carino,
        1 => LinkMethod::Menchero,
        2 => LinkMethod::Grap,
        _ => LinkMethod::Frongello,
    };
    // Effects that add up to the excess return (mostly), split at random.
    let mut effects = Vec::with_capacity(periods * n_effects);
    for t in 0..periods {
        let shares: Vec<f64> = (0..n_effects).map(|_| g.uniform()).collect();
        let total: f64 = shares.iter().sum();
        effects.extend(shares.iter().map(|s| s / total * (rp[t] - rb[t])));
    }
    sprinkle(&mut g, std::slice::from_mut(&mut effects), 1);
    if let Ok(linked) = linking::link(&rp, &rb, &effects, n_effects, method) {
        assert_eq!(linked.len(), n_effects);
        all_finite_or_nan(linked, "link");
    }
    // Geometric: (1 + A)(1 + S) = (1 + Rp)/(1 + Rb), split over sectors.
    let n_sectors = n_effects;
    let (mut allocation, mut selection) = (Vec::new(), Vec::new());
    for t in 0..periods {
        let g_excess = (1.0 + rp[t]) / (1.0 + rb[t]) - 1.0;
        let a_total = 0.5 * g_excess;
        let s_total = (1.0 + g_excess) / (1.0 + a_total) - 1.0;
        for _ in 0..n_sectors {
            allocation.push(a_total / n_sectors as f64);
            selection.push(s_total / n_sectors as f64);
        }
    }
    if let Ok(links) = linking::link_geometric(&rp, &rb, &allocation, &selection, n_sectors) {
        for v in [&links.allocation, &links.selection, &links.total] {
            assert_eq!(v.len(), n_sectors);
            all_finite_or_nan(v.iter().copied(), "link_geometric");
        }
    }
    // A Brinson table linked per sector.
    let rows = g.range(0, 40);
    let date_starts = dates(&mut g, rows);
    let sectors: Vec<u16> = (0..rows).map(|_| u16::from(g.byte() % 4)).collect();
    let cols: Vec<Vec<f64>> = (0..7).map(|_| column(&mut g, rows, 0.01, 0.05)).collect();
    let table = SectorRows {
        date_starts: &date_starts,
        sectors: Keys::U16(&sectors),
        wp: &cols[0],
        wb: &cols[1],
        rp: &cols[2],
        rb: &cols[3],
        allocation: &cols[4],
        selection: &cols[5],
        interaction: &cols[6],
    };
    let linking = if g.flag() {
        Linking::Geometric
    } else {
        Linking::Arithmetic(method)
    };
    if let Ok(out) = linking::link_sectors(&table, linking) {
        let s = out.sector_rows.len();
        for v in [
            &out.allocation,
            &out.selection,
            &out.interaction,
            &out.total,
        ] {
            assert_eq!(v.len(), s);
            all_finite_or_nan(v.iter().copied(), "link_sectors");
        }
        all_finite_or_nan(
            out.period_rp.iter().chain(&out.period_rb).copied(),
            "link_sectors",
        );
    }
}

pub fn factor_attribution(data: &[u8]) {
    let mut g = Bytes::new(data);
    let rows = g.range(0, 50);
    let k = g.range(0, 4);
    let date_starts = dates(&mut g, rows);
    let periods = date_starts.len() - 1;
    let wp = column(&mut g, rows, 0.1, 0.05);
    let wb = column(&mut g, rows, 0.1, 0.05);
    let ret = column(&mut g, rows, 0.01, 0.05);
    let betas: Vec<Vec<f64>> = (0..k).map(|_| column(&mut g, rows, 1.0, 0.3)).collect();
    let beta_refs: Vec<&[f64]> = betas.iter().map(|b| b.as_slice()).collect();
    let factor_returns = column(&mut g, periods * k, 0.0, 0.02);
    let input = FactorInput {
        date_starts: &date_starts,
        wp: &wp,
        wb: g.flag().then_some(wb.as_slice()),
        ret: &ret,
        betas: &beta_refs,
        factor_returns: &factor_returns,
    };
    let Ok(out) = factor_attribution::factor_contributions(&input) else {
        return;
    };
    assert_eq!(out.rp.len(), periods);
    assert_eq!(out.rb.len(), periods);
    assert_eq!(out.specific.len(), periods);
    assert_eq!(out.unexposed_weight.len(), periods);
    assert_eq!(out.contributions.len(), periods * k);
    all_finite_or_nan(
        out.rp
            .iter()
            .chain(&out.rb)
            .chain(&out.specific)
            .chain(&out.unexposed_weight)
            .chain(&out.contributions)
            .copied(),
        "factor_contributions",
    );
}

// ---------------------------------------------------------------------------------
// Return panels (diversification, risk contributions, clusters)

fn panel(g: &mut Bytes<'_>, max_rows: usize, max_assets: usize) -> (usize, Vec<Vec<f64>>) {
    let n_rows = g.range(0, max_rows);
    let n = g.range(0, max_assets);
    let common: Vec<f64> = (0..n_rows).map(|_| g.normal()).collect();
    let mut columns: Vec<Vec<f64>> = (0..n)
        .map(|_| {
            let s = 0.01 * column_scale(g);
            let load = g.uniform();
            common.iter().map(|c| s * (load * c + g.normal())).collect()
        })
        .collect();
    if n > 1 && g.byte() % 8 == 0 {
        // A duplicate or constant column: singular covariance.
        let (a, b) = (g.range(0, n - 1), g.range(0, n - 1));
        columns[a] = if g.flag() {
            columns[b].clone()
        } else {
            vec![0.02; n_rows]
        };
    }
    sprinkle(g, &mut columns, 4);
    (n_rows, columns)
}

fn ends(g: &mut Bytes<'_>, n_rows: usize) -> (usize, Vec<usize>) {
    let width = g.range(0, n_rows + 1);
    let mut ends: Vec<usize> = (0..g.range(0, 6)).map(|_| g.range(0, n_rows + 1)).collect();
    if g.byte() % 4 != 0 {
        ends.sort_unstable();
        ends.dedup();
    }
    (width, ends)
}

pub fn diversification(data: &[u8]) {
    let mut g = Bytes::new(data);
    let (n_rows, columns) = panel(&mut g, 60, 8);
    let refs: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
    let (width, ends) = ends(&mut g, n_rows);
    let n = columns.len();
    let scale = column_scale(&mut g);
    let mut weights: Vec<f64> = (0..n * ends.len().max(1))
        .map(|_| scale * g.uniform())
        .collect();
    sprinkle(&mut g, std::slice::from_mut(&mut weights), 1);
    let weights = match g.byte() % 3 {
        0 => Weights::Equal,
        1 => Weights::Static(&weights[..n.min(weights.len())]),
        _ => Weights::PerWindow(&weights[..n * ends.len()]),
    };
    let options = DiversificationOptions {
        width,
        shrinkage: if g.flag() {
            Shrinkage::LedoitWolf
        } else {
            Shrinkage::None
        },
        max_iter: g.range(0, 200),
    };
    let Ok(s) = diversification::diversification(
        &refs,
        n_rows,
        &ends,
        weights,
        &options,
        &Interrupt::new(),
    ) else {
        return;
    };
    let m = ends.len();
    for v in [
        &s.excluded_weight,
        &s.volatility,
        &s.diversification_ratio,
        &s.effective_n,
        &s.enb_pca,
        &s.enb_mt,
        &s.absorption_ratio,
        &s.avg_correlation,
    ] {
        assert_eq!(v.len(), m);
        all_finite_or_nan(v.iter().copied(), "diversification");
    }
    assert_eq!(s.end_row, ends);
    assert_eq!(s.n_assets.len(), m);
    assert_eq!(s.not_converged.len(), m);
}

pub fn risk_contributions(data: &[u8]) {
    let mut g = Bytes::new(data);
    let (n_rows, columns) = panel(&mut g, 40, 8);
    let refs: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
    let scale = column_scale(&mut g);
    let mut weights: Vec<f64> = (0..columns.len())
        .map(|_| scale * (g.uniform() - 0.2))
        .collect();
    sprinkle(&mut g, std::slice::from_mut(&mut weights), 1);
    let shrinkage = if g.flag() {
        Shrinkage::LedoitWolf
    } else {
        Shrinkage::None
    };
    let Ok(r) = diversification::risk_contributions(&refs, n_rows, &weights, shrinkage) else {
        return;
    };
    for v in [&r.marginal, &r.component, &r.percent] {
        assert_eq!(v.len(), columns.len());
        all_finite_or_nan(v.iter().copied(), "risk_contributions");
    }
    all_finite_or_nan(r.volatility.iter().copied(), "risk_contributions");
}

pub fn clusters(data: &[u8]) {
    let mut g = Bytes::new(data);
    let (n_rows, columns) = panel(&mut g, 40, 9);
    let refs: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
    let linkage = match g.byte() % 4 {
        0 => Linkage::Single,
        1 => Linkage::Complete,
        2 => Linkage::Average,
        _ => Linkage::Ward,
    };
    let k = g.range(0, 10);
    if let Ok((assets, labels)) =
        clusters::correlation_clusters(&refs, n_rows, k, linkage, &Interrupt::new())
    {
        assert_eq!(assets.len(), labels.len());
        assert!(labels.iter().all(|&l| (l as usize) < k), "label beyond k");
    }
    let (width, ends) = ends(&mut g, n_rows);
    let sectors: Vec<u32> = (0..columns.len())
        .map(|_| u32::from(g.byte() % 3))
        .collect();
    let n_clusters = if g.flag() { Some(g.range(0, 6)) } else { None };
    if let Ok(c) = clusters::sector_coherence(
        &refs,
        n_rows,
        &ends,
        width,
        &sectors,
        n_clusters,
        linkage,
        &Interrupt::new(),
    ) {
        let m = c.window.len();
        for v in [
            &c.intra_correlation,
            &c.inter_correlation,
            &c.adjusted_rand_index,
        ] {
            assert_eq!(v.len(), m);
            all_finite_or_nan(v.iter().copied(), "sector_coherence");
        }
        assert_eq!(c.sector.len(), m);
        assert_eq!(c.n_assets.len(), m);
    }
    let a: Vec<u32> = (0..g.range(0, 20))
        .map(|_| u32::from(g.byte() % 4))
        .collect();
    let b: Vec<u32> = a.iter().map(|_| u32::from(g.byte() % 4)).collect();
    let ari = clusters::adjusted_rand_index(&a, &b);
    assert!(!ari.is_infinite(), "adjusted_rand_index {ari}");
}

/// Every target by name, for the smoke test and the replay tool.
pub const TARGETS: [(&str, fn(&[u8])); 7] = [
    ("rolling_ols", rolling_ols),
    ("brinson", brinson),
    ("linking", linking),
    ("diversification", diversification),
    ("risk_contributions", risk_contributions),
    ("factor_attribution", factor_attribution),
    ("clusters", clusters),
];
