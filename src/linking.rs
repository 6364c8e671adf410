//! Multi-period linking: per-period effects scaled so that their sums over periods add
//! up to the compounded excess return.
//!
//! Carino, Menchero and GRAP scale each period's effects by one coefficient per
//! period; Frongello runs its recursion per effect; geometric effects compound and are
//! split over sectors in log space. Logs and powers go through `ln_1p`/`exp_m1` so that
//! periods with tiny or equal returns lose no digits.

use rayon::prelude::*;

use crate::error::{at_row, in_range, invalid, Result};
use crate::groups::{Distinct, Keys};

/// Arithmetic linking methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMethod {
    Carino,
    Menchero,
    Grap,
    Frongello,
}

/// Linking of a Brinson effects table: arithmetic, or geometric for geometric effects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linking {
    Arithmetic(LinkMethod),
    Geometric,
}

/// How far a period's effects may sit from its excess return before linking refuses them.
pub const CONSISTENCY_TOLERANCE: f64 = 1e-8;

/// ln(1 + x) / x, continuous at 0.
fn log_ratio(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        x.ln_1p() / x
    }
}

/// (e^y - 1) / y, continuous at 0.
fn exp_ratio(y: f64) -> f64 {
    if y == 0.0 {
        1.0
    } else {
        y.exp_m1() / y
    }
}

/// Compounded return of a series of period returns.
pub fn compound(returns: &[f64]) -> f64 {
    returns.iter().fold(1.0, |acc, r| acc * (1.0 + r)) - 1.0
}

/// The sizes of returns and effects linking computes with (see [`in_range`]).
const OUT_OF_RANGE: &str = "too large or too small to compute with: nonzero values must \
     lie between 1e-150 and 1e150 in size";

/// The error of linked effects that are not all finite: inputs in range can still
/// compound beyond the range of floating point.
fn overflowed<'a>(mut linked: impl Iterator<Item = &'a f64>) -> Result<()> {
    if linked.all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(invalid(
            "linking: the returns compound beyond the range of floating point (1e308); \
             link fewer periods or returns of a sensible size",
        ))
    }
}

fn check_returns(rp: &[f64], rb: &[f64]) -> Result<()> {
    if rp.len() != rb.len() {
        return Err(invalid("linking: return series of different lengths"));
    }
    if rp.is_empty() {
        return Err(invalid("linking needs at least one period"));
    }
    for (t, (p, b)) in rp.iter().zip(rb).enumerate() {
        if !(p.is_finite() && b.is_finite()) {
            return Err(at_row(t, "the period return is missing or infinite"));
        }
        if !(in_range(*p) && in_range(*b)) {
            return Err(at_row(t, format!("the period return is {OUT_OF_RANGE}")));
        }
        if *p <= -1.0 || *b <= -1.0 {
            return Err(at_row(t, "a return of -100% or less cannot be linked"));
        }
    }
    Ok(())
}

/// One coefficient per period: linked effect = Σ_t c_t · e_t (Carino, Menchero, GRAP).
fn coefficients(rp: &[f64], rb: &[f64], method: LinkMethod) -> Vec<f64> {
    let (total_p, total_b) = (compound(rp), compound(rb));
    match method {
        LinkMethod::Carino => {
            // k = ln((1+R)/(1+B)) / (R - B), written to stay exact when R ≈ B.
            let k = |p: f64, b: f64| log_ratio((p - b) / (1.0 + b)) / (1.0 + b);
            let whole = k(total_p, total_b);
            rp.iter().zip(rb).map(|(&p, &b)| k(p, b) / whole).collect()
        }
        LinkMethod::Menchero => {
            let periods = rp.len() as f64;
            let log_excess = ((total_p - total_b) / (1.0 + total_b)).ln_1p();
            // M = ((R-B)/T) / ((1+R)^(1/T) - (1+B)^(1/T)), finite when R = B.
            let m = (1.0 + total_b).powf(1.0 - 1.0 / periods) * exp_ratio(log_excess)
                / exp_ratio(log_excess / periods);
            let excess: Vec<f64> = rp.iter().zip(rb).map(|(p, b)| p - b).collect();
            let sum: f64 = excess.iter().sum();
            let sum_squares: f64 = excess.iter().map(|a| a * a).sum();
            let scale = if sum_squares > 0.0 {
                ((total_p - total_b) - m * sum) / sum_squares
            } else {
                0.0
            };
            excess.iter().map(|a| m + scale * a).collect()
        }
        LinkMethod::Grap => {
            // Π_{s<t}(1 + Rp_s) · Π_{s>t}(1 + Rb_s)
            let mut after = vec![1.0; rb.len()];
            for t in (0..rb.len().saturating_sub(1)).rev() {
                after[t] = after[t + 1] * (1.0 + rb[t + 1]);
            }
            let mut before = 1.0;
            after
                .iter()
                .zip(rp)
                .map(|(a, p)| {
                    let c = before * a;
                    before *= 1.0 + p;
                    c
                })
                .collect()
        }
        LinkMethod::Frongello => unreachable!("Frongello links by recursion"),
    }
}

/// Links `effects` (periods × `n_effects`, period-major) over the periods with returns
/// `rp`, `rb`. The effects of each period must add up to `rp[t] - rb[t]`.
pub fn link(
    rp: &[f64],
    rb: &[f64],
    effects: &[f64],
    n_effects: usize,
    method: LinkMethod,
) -> Result<Vec<f64>> {
    check_returns(rp, rb)?;
    if effects.len() != rp.len() * n_effects {
        return Err(invalid("linking: effects do not match the periods"));
    }
    for (t, period) in effects.chunks(n_effects.max(1)).enumerate() {
        if period.iter().any(|e| !e.is_finite()) {
            return Err(at_row(t, "an effect is missing or infinite"));
        }
        if !period.iter().all(|&e| in_range(e)) {
            return Err(at_row(t, format!("an effect is {OUT_OF_RANGE}")));
        }
        let sum: f64 = period.iter().sum();
        let excess = rp[t] - rb[t];
        if (sum - excess).abs() > CONSISTENCY_TOLERANCE {
            return Err(at_row(
                t,
                format!(
                    "the effects add up to {sum:.10} but the excess return is {excess:.10}; \
                     arithmetic linking needs effects that add up to Rp - Rb \
                     (geometric effects are linked with method=\"geometric\")"
                ),
            ));
        }
    }
    let mut linked = vec![0.0; n_effects];
    if method == LinkMethod::Frongello {
        // G_t = e_t · Π_{s<t}(1 + Rp_s) + Rb_t · Σ_{s<t} G_s, summed over t.
        let mut grown = 1.0;
        for (t, period) in effects.chunks(n_effects.max(1)).enumerate() {
            for (cumulative, e) in linked.iter_mut().zip(period) {
                *cumulative += e * grown + rb[t] * *cumulative;
            }
            grown *= 1.0 + rp[t];
        }
    } else {
        let c = coefficients(rp, rb, method);
        for (period, c) in effects.chunks(n_effects.max(1)).zip(&c) {
            for (sum, e) in linked.iter_mut().zip(period) {
                *sum += c * e;
            }
        }
    }
    overflowed(linked.iter())?;
    Ok(linked)
}

/// Geometric effects linked over periods (see `link_geometric`).
#[derive(Debug, Clone, PartialEq)]
pub struct GeometricLinks {
    /// Per sector; they add up to Π(1 + A_t) - 1.
    pub allocation: Vec<f64>,
    /// Per sector; they add up to Π(1 + S_t) - 1.
    pub selection: Vec<f64>,
    /// Per sector share of the geometric excess (1 + R)/(1 + B) - 1; they add up to it.
    pub total: Vec<f64>,
}

/// Links geometric effects (periods × `n_sectors`, period-major), whose period totals
/// A_t and S_t compound: (1 + A_t)(1 + S_t) = (1 + Rp_t)/(1 + Rb_t).
///
/// Each sector gets the share of ln(1 + A_t) that its effect is of A_t, summed over
/// periods, and the log sums are mapped back to returns by the one factor that makes
/// them add up: A / ln(1 + A) for allocation, S / ln(1 + S) for selection, and
/// G / ln(1 + G) for the total of both, G being the geometric excess.
pub fn link_geometric(
    rp: &[f64],
    rb: &[f64],
    allocation: &[f64],
    selection: &[f64],
    n_sectors: usize,
) -> Result<GeometricLinks> {
    check_returns(rp, rb)?;
    let periods = rp.len();
    if allocation.len() != periods * n_sectors || selection.len() != allocation.len() {
        return Err(invalid("linking: effects do not match the periods"));
    }
    let width = n_sectors.max(1);
    let mut logs = (vec![0.0; n_sectors], vec![0.0; n_sectors]);
    let (mut log_a, mut log_s) = (0.0, 0.0);
    for (t, (a, s)) in allocation
        .chunks(width)
        .zip(selection.chunks(width))
        .enumerate()
    {
        if a.iter().chain(s).any(|e| !e.is_finite()) {
            return Err(at_row(t, "an effect is missing or infinite"));
        }
        if !a.iter().chain(s).all(|&e| in_range(e)) {
            return Err(at_row(t, format!("an effect is {OUT_OF_RANGE}")));
        }
        let (total_a, total_s): (f64, f64) = (a.iter().sum(), s.iter().sum());
        if total_a <= -1.0 || total_s <= -1.0 {
            return Err(at_row(
                t,
                "a geometric effect of -100% or less cannot be linked",
            ));
        }
        let excess = (1.0 + rp[t]) / (1.0 + rb[t]) - 1.0;
        let compounded = (1.0 + total_a) * (1.0 + total_s) - 1.0;
        if (compounded - excess).abs() > CONSISTENCY_TOLERANCE {
            return Err(at_row(
                t,
                format!(
                    "allocation and selection compound to {compounded:.10} but the geometric \
                     excess return is {excess:.10}; method=\"geometric\" links the effects of \
                     brinson(method=\"geometric\")"
                ),
            ));
        }
        let (ka, ks) = (log_ratio(total_a), log_ratio(total_s));
        for i in 0..n_sectors {
            logs.0[i] += a[i] * ka;
            logs.1[i] += s[i] * ks;
        }
        log_a += total_a.ln_1p();
        log_s += total_s.ln_1p();
    }
    // Back from log sums: x / ln(1 + x) = 1 / log_ratio(x) with x = e^{log} - 1.
    let back = |log: f64| 1.0 / log_ratio(log.exp_m1());
    let (to_a, to_s, to_g) = (back(log_a), back(log_s), back(log_a + log_s));
    let links = GeometricLinks {
        allocation: logs.0.iter().map(|l| l * to_a).collect(),
        selection: logs.1.iter().map(|l| l * to_s).collect(),
        total: logs
            .0
            .iter()
            .zip(&logs.1)
            .map(|(a, s)| (a + s) * to_g)
            .collect(),
    };
    overflowed(
        links
            .allocation
            .iter()
            .chain(&links.selection)
            .chain(&links.total),
    )?;
    Ok(links)
}

/// A Brinson effects table, one row per (date, sector), rows grouped by date.
pub struct SectorRows<'a> {
    pub date_starts: &'a [usize],
    pub sectors: Keys<'a>,
    pub wp: &'a [f64],
    pub wb: &'a [f64],
    pub rp: &'a [f64],
    pub rb: &'a [f64],
    pub allocation: &'a [f64],
    pub selection: &'a [f64],
    pub interaction: &'a [f64],
}

/// Linked effects per sector code (order of first appearance).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedSectors {
    pub sector_rows: Vec<usize>,
    pub allocation: Vec<f64>,
    pub selection: Vec<f64>,
    pub interaction: Vec<f64>,
    pub total: Vec<f64>,
    /// Per-period portfolio and benchmark returns, Σ wp·rp and Σ wb·rb.
    pub period_rp: Vec<f64>,
    pub period_rb: Vec<f64>,
}

/// Per-period returns and dense (period × sector) effects of a Brinson table.
struct DenseEffects {
    rp: Vec<f64>,
    rb: Vec<f64>,
    /// period × sector × [allocation, selection, interaction]
    effects: Vec<f64>,
}

fn densify(rows: &SectorRows<'_>, sectors: &Distinct) -> Result<DenseEffects> {
    let n_sectors = sectors.len();
    let periods = rows.date_starts.len() - 1;
    let mut effects = vec![0.0; periods * n_sectors * 3];
    let totals: Vec<Result<(f64, f64)>> = effects
        .par_chunks_mut((n_sectors * 3).max(1))
        .zip(rows.date_starts.par_windows(2))
        .map(|(out, run)| {
            let (mut rp, mut rb) = (0.0, 0.0);
            let mut seen = vec![false; n_sectors];
            for row in run[0]..run[1] {
                let code = sectors.code(rows.sectors.get(row));
                if std::mem::replace(&mut seen[code], true) {
                    return Err(at_row(row, "sector appears twice on this date"));
                }
                for (side, (w, r)) in [("wp", (rows.wp, rows.rp)), ("wb", (rows.wb, rows.rb))] {
                    if w[row].is_nan() {
                        return Err(at_row(row, format!("{side} (weight) is missing")));
                    }
                    if w[row] != 0.0 && r[row].is_nan() {
                        return Err(at_row(
                            row,
                            "a sector return is missing under a non-zero weight",
                        ));
                    }
                }
                if rows.wp[row] != 0.0 {
                    rp += rows.wp[row] * rows.rp[row];
                }
                if rows.wb[row] != 0.0 {
                    rb += rows.wb[row] * rows.rb[row];
                }
                out[3 * code] = rows.allocation[row];
                out[3 * code + 1] = rows.selection[row];
                out[3 * code + 2] = rows.interaction[row];
            }
            Ok((rp, rb))
        })
        .collect();
    let (mut rp, mut rb) = (Vec::with_capacity(periods), Vec::with_capacity(periods));
    for total in totals {
        let (p, b) = total?;
        rp.push(p);
        rb.push(b);
    }
    Ok(DenseEffects { rp, rb, effects })
}

/// Links a Brinson effects table per sector.
pub fn link_sectors(rows: &SectorRows<'_>, linking: Linking) -> Result<LinkedSectors> {
    let n = rows.sectors.len();
    let columns = [
        rows.wp,
        rows.wb,
        rows.rp,
        rows.rb,
        rows.allocation,
        rows.selection,
        rows.interaction,
    ];
    if columns.iter().any(|c| c.len() != n) || rows.date_starts.last() != Some(&n) {
        return Err(invalid("linking: columns of different lengths"));
    }
    let sectors = Distinct::of(rows.sectors);
    let n_sectors = sectors.len();
    let dense = densify(rows, &sectors)?;
    // A period's error is reported at its first row.
    let at_period = |e| match e {
        crate::Error::AtRow { row, problem } => at_row(rows.date_starts[row], problem),
        other => other,
    };
    let (allocation, selection, interaction, total) = match linking {
        Linking::Arithmetic(method) => {
            let linked = link(&dense.rp, &dense.rb, &dense.effects, 3 * n_sectors, method)
                .map_err(at_period)?;
            let effect =
                |k: usize| -> Vec<f64> { linked.iter().skip(k).step_by(3).copied().collect() };
            let (a, s, i) = (effect(0), effect(1), effect(2));
            let total = (0..n_sectors).map(|j| a[j] + s[j] + i[j]).collect();
            (a, s, i, total)
        }
        Linking::Geometric => {
            if let Some(row) = rows.interaction.iter().position(|&i| i != 0.0) {
                return Err(at_row(
                    row,
                    "geometric effects have no interaction; method=\"geometric\" links the \
                     effects of brinson(method=\"geometric\")",
                ));
            }
            let pick = |k: usize| -> Vec<f64> {
                dense.effects.iter().skip(k).step_by(3).copied().collect()
            };
            let links = link_geometric(&dense.rp, &dense.rb, &pick(0), &pick(1), n_sectors)
                .map_err(at_period)?;
            (
                links.allocation,
                links.selection,
                vec![0.0; n_sectors],
                links.total,
            )
        }
    };
    Ok(LinkedSectors {
        sector_rows: sectors.first_rows,
        allocation,
        selection,
        interaction,
        total,
        period_rp: dense.rp,
        period_rb: dense.rb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RP: [f64; 4] = [0.052, -0.031, 0.018, 0.094];
    const RB: [f64; 4] = [0.040, -0.012, 0.025, 0.061];

    #[test]
    fn returns_that_compound_beyond_floating_point_are_refused() {
        // Found by the fuzz target: each return in range, their product infinite.
        let rp = [1e150; 4];
        let rb = [0.0; 4];
        let effects: Vec<f64> = rp.to_vec();
        for method in [LinkMethod::Carino, LinkMethod::Grap, LinkMethod::Frongello] {
            let error = link(&rp, &rb, &effects, 1, method).unwrap_err();
            assert!(error.to_string().contains("compound beyond"), "{error}");
        }
        let error = link(&[1e200], &[0.0], &[1e200], 1, LinkMethod::Carino).unwrap_err();
        assert!(error.to_string().contains("too large"), "{error}");
    }

    /// Two effects per period that add up to each period's excess.
    fn effects() -> Vec<f64> {
        RP.iter()
            .zip(&RB)
            .flat_map(|(p, b)| [0.3 * (p - b) + 0.001, 0.7 * (p - b) - 0.001])
            .collect()
    }

    #[test]
    fn every_method_adds_up_to_the_compounded_excess() {
        let excess = compound(&RP) - compound(&RB);
        for method in [
            LinkMethod::Carino,
            LinkMethod::Menchero,
            LinkMethod::Grap,
            LinkMethod::Frongello,
        ] {
            let linked = link(&RP, &RB, &effects(), 2, method).unwrap();
            let sum: f64 = linked.iter().sum();
            assert!(
                (sum - excess).abs() < 1e-15,
                "{method:?}: {sum} vs {excess}"
            );
        }
    }

    #[test]
    fn frongello_totals_equal_grap() {
        let grap = link(&RP, &RB, &effects(), 2, LinkMethod::Grap).unwrap();
        let frongello = link(&RP, &RB, &effects(), 2, LinkMethod::Frongello).unwrap();
        for (g, f) in grap.iter().zip(&frongello) {
            assert!((g - f).abs() < 1e-16);
        }
    }

    #[test]
    fn carino_matches_its_definition_and_survives_equal_returns() {
        let k = |p: f64, b: f64| ((1.0 + p).ln() - (1.0 + b).ln()) / (p - b);
        let whole = k(compound(&RP), compound(&RB));
        let e = effects();
        let direct: f64 = (0..4).map(|t| e[2 * t] * k(RP[t], RB[t]) / whole).sum();
        let linked = link(&RP, &RB, &e, 2, LinkMethod::Carino).unwrap();
        assert!((linked[0] - direct).abs() < 1e-15);
        // Equal returns in a period: the coefficient's limit 1/(1+R), no NaN.
        let same = link(
            &[0.01, 0.02],
            &[0.01, 0.0],
            &[0.0, 0.0, 0.01, 0.01],
            2,
            LinkMethod::Carino,
        );
        assert!(same.unwrap().iter().all(|x| x.is_finite()));
    }

    #[test]
    fn menchero_matches_its_definition() {
        let (r, b, n) = (compound(&RP), compound(&RB), 4.0);
        let m = ((r - b) / n) / ((1.0 + r).powf(1.0 / n) - (1.0 + b).powf(1.0 / n));
        let a: Vec<f64> = RP.iter().zip(&RB).map(|(p, b)| p - b).collect();
        let sum: f64 = a.iter().sum();
        let sq: f64 = a.iter().map(|x| x * x).sum();
        let e = effects();
        let direct: f64 = (0..4)
            .map(|t| e[2 * t] * (m + (r - b - m * sum) / sq * a[t]))
            .sum();
        let linked = link(&RP, &RB, &e, 2, LinkMethod::Menchero).unwrap();
        assert!(
            (linked[0] - direct).abs() < 1e-14,
            "{} vs {direct}",
            linked[0]
        );
    }

    #[test]
    fn effects_that_do_not_add_up_are_refused() {
        let mut e = effects();
        e[5] += 1e-6;
        let err = link(&RP, &RB, &e, 2, LinkMethod::Carino).unwrap_err();
        assert!(matches!(err, crate::Error::AtRow { row: 2, .. }));
    }

    #[test]
    fn geometric_links_compound() {
        // Per period: allocation (1+Rb')/(1+Rb) - 1 split over two sectors, selection the rest.
        let semi = [0.045, -0.02, 0.02, 0.07];
        let (mut a, mut s) = (Vec::new(), Vec::new());
        for t in 0..4 {
            let (at, st) = (
                (1.0 + semi[t]) / (1.0 + RB[t]) - 1.0,
                (1.0 + RP[t]) / (1.0 + semi[t]) - 1.0,
            );
            a.extend([0.25 * at, 0.75 * at]);
            s.extend([0.6 * st, 0.4 * st]);
        }
        let links = link_geometric(&RP, &RB, &a, &s, 2).unwrap();
        let total_a: f64 = links.allocation.iter().sum();
        let total_s: f64 = links.selection.iter().sum();
        let direct_a = compound(&(0..4).map(|t| a[2 * t] + a[2 * t + 1]).collect::<Vec<_>>());
        assert!((total_a - direct_a).abs() < 1e-15);
        let excess = (1.0 + compound(&RP)) / (1.0 + compound(&RB)) - 1.0;
        assert!(((1.0 + total_a) * (1.0 + total_s) - 1.0 - excess).abs() < 1e-15);
        assert!((links.total.iter().sum::<f64>() - excess).abs() < 1e-15);
    }
}
