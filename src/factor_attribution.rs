//! Factor attribution: each period's (active) return split into one contribution per
//! factor, f_k,t · Σ_i a_i,t β_i,k, plus the specific rest.

use rayon::prelude::*;

use crate::error::{at_row, invalid, range_error, Result};

/// Holdings of every period, rows grouped by date, already aligned with the asset
/// returns of the period and the asset exposures known before it.
pub struct FactorInput<'a> {
    pub date_starts: &'a [usize],
    pub wp: &'a [f64],
    /// Benchmark weights: the active weights wp - wb are attributed.
    pub wb: Option<&'a [f64]>,
    pub ret: &'a [f64],
    /// One column per factor; NaN where an asset has no exposures yet.
    pub betas: &'a [&'a [f64]],
    /// Factor returns, period × factor (period-major).
    pub factor_returns: &'a [f64],
}

/// Per period: returns, contributions (period × factor) and the specific rest.
#[derive(Debug, Clone, PartialEq)]
pub struct FactorContributions {
    pub rp: Vec<f64>,
    pub rb: Vec<f64>,
    pub contributions: Vec<f64>,
    pub specific: Vec<f64>,
    /// Summed (active) weight of holdings without exposures.
    pub unexposed_weight: Vec<f64>,
}

struct Period {
    rp: f64,
    rb: f64,
    exposure: Vec<f64>,
    unexposed: f64,
}

pub fn factor_contributions(input: &FactorInput<'_>) -> Result<FactorContributions> {
    let n = input.wp.len();
    let k = input.betas.len();
    let periods = input.date_starts.len().saturating_sub(1);
    if input.ret.len() != n
        || input.wb.is_some_and(|w| w.len() != n)
        || input.betas.iter().any(|b| b.len() != n)
        || input.factor_returns.len() != periods * k
        || input.date_starts.last() != Some(&n)
    {
        return Err(invalid("factor attribution: inputs of different lengths"));
    }
    let per_period: Vec<Result<Period>> = input
        .date_starts
        .par_windows(2)
        .map(|run| {
            let mut period = Period {
                rp: 0.0,
                rb: 0.0,
                exposure: vec![0.0; k],
                unexposed: 0.0,
            };
            for row in run[0]..run[1] {
                let (wp, wb, r) = (
                    input.wp[row],
                    input.wb.map_or(0.0, |w| w[row]),
                    input.ret[row],
                );
                for (w, name) in [(wp, "wp"), (wb, "wb")] {
                    if w.is_nan() {
                        return Err(at_row(row, format!("{name} (weight) is missing")));
                    }
                    if let Some(error) = range_error(w, name, row, 0) {
                        return Err(error);
                    }
                }
                if let Some(error) = range_error(r, "returns", row, 0) {
                    return Err(error);
                }
                if wp == 0.0 && wb == 0.0 {
                    continue;
                }
                if r.is_nan() {
                    return Err(at_row(
                        row,
                        "the asset has no return under a non-zero weight",
                    ));
                }
                period.rp += wp * r;
                period.rb += wb * r;
                let active = wp - wb;
                if input.betas.iter().any(|b| b[row].is_nan()) {
                    period.unexposed += active;
                } else {
                    for (f, (e, b)) in period.exposure.iter_mut().zip(input.betas).enumerate() {
                        if let Some(error) = range_error(b[row], "exposures", row, f) {
                            return Err(error);
                        }
                        *e += active * b[row];
                    }
                }
            }
            Ok(period)
        })
        .collect();
    let mut out = FactorContributions {
        rp: Vec::with_capacity(periods),
        rb: Vec::with_capacity(periods),
        contributions: Vec::with_capacity(periods * k),
        specific: Vec::with_capacity(periods),
        unexposed_weight: Vec::with_capacity(periods),
    };
    for (t, period) in per_period.into_iter().enumerate() {
        let period = period?;
        let factors = &input.factor_returns[t * k..(t + 1) * k];
        if factors.iter().any(|f| f.is_nan()) {
            return Err(at_row(
                input.date_starts[t],
                "a factor return is missing on this date",
            ));
        }
        // Positioned by period and factor.
        let range = |(f, &v)| range_error(v, "factor_returns", t, f);
        if let Some(error) = factors.iter().enumerate().find_map(range) {
            return Err(error);
        }
        let start = out.contributions.len();
        out.contributions
            .extend(period.exposure.iter().zip(factors).map(|(e, f)| e * f));
        let explained: f64 = out.contributions[start..].iter().sum();
        out.specific.push(period.rp - period.rb - explained);
        out.rp.push(period.rp);
        out.rb.push(period.rb);
        out.unexposed_weight.push(period.unexposed);
    }
    // Each input in range, their products need not be.
    let results = [&out.rp, &out.rb, &out.contributions, &out.specific];
    if results.iter().any(|r| r.iter().any(|v| !v.is_finite())) {
        return Err(invalid(
            "factor attribution: weights times exposures times factor returns would exceed \
             1e308; rescale them",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contributions_and_specific_add_up() {
        // Two periods; period 1 has an asset without exposures.
        let betas_market = [1.2, 0.8, 1.0, f64::NAN];
        let betas_size = [0.3, -0.2, 0.1, f64::NAN];
        let input = FactorInput {
            date_starts: &[0, 2, 4],
            wp: &[0.6, 0.4, 0.5, 0.5],
            wb: Some(&[0.5, 0.5, 0.5, 0.5]),
            ret: &[0.02, -0.01, 0.03, 0.01],
            betas: &[&betas_market, &betas_size],
            factor_returns: &[0.01, 0.002, 0.015, -0.004],
        };
        let out = factor_contributions(&input).unwrap();
        let market0 = 0.01 * (0.1 * 1.2 + -0.1 * 0.8);
        assert!((out.contributions[0] - market0).abs() < 1e-18);
        assert_eq!(out.unexposed_weight, vec![0.0, 0.0]);
        for t in 0..2 {
            let explained: f64 = out.contributions[2 * t..2 * t + 2].iter().sum();
            assert!((explained + out.specific[t] - (out.rp[t] - out.rb[t])).abs() < 1e-18);
        }
        let no_benchmark = FactorInput { wb: None, ..input };
        let out = factor_contributions(&no_benchmark).unwrap();
        assert_eq!(out.unexposed_weight[1], 0.5);
        assert!((out.contributions[2] - 0.015 * 0.5 * 1.0).abs() < 1e-18);
    }
}
