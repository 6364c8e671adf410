//! Sliding-window sums of per-row vectors, streamed in date order.
//!
//! Each window sum is updated by adding the newest row and subtracting the one that
//! leaves. On its own that loses digits over thousands of steps, so the rows are also
//! summed directly in blocks of `W`: whenever a block is complete, the window is
//! exactly that block and the sliding sums restart from its direct sum. Rounding
//! therefore never builds up over more than `W` steps, however long the series, and
//! the state is one vector per sum (no per-window buffers).
//!
//! Exponential weights slide the same way: the sums decay by `lambda` per row and the
//! leaving row is removed with weight `lambda^W`.

/// Which rows a window covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last `W` rows up to and including the current one (fewer at the start).
    Rolling(usize),
    /// Every row from the first up to the current one.
    Expanding,
}

/// Sliding window sums, driven row by row by the caller:
///
/// ```text
/// let mut window = WindowSums::new(width, span, lambda);
/// for t in 0..n_rows {
///     fill(t, window.entering());
///     if let Some(r) = window.leaving_row(t) { fill(r, window.leaving()); }
///     use(window.advance(t));   // sums over the window ending at t
/// }
/// ```
///
/// Driving it from the caller (rather than through callbacks) keeps all the per-row
/// work inside the caller's function, so it is compiled with the caller's instruction
/// set (see the AVX2 dispatch in `exposures`).
pub struct WindowSums {
    span: Span,
    lambda: f64,
    /// Weight of the row leaving the window: lambda^W.
    fade: f64,
    sums: Vec<f64>,
    /// Direct sum of the current block's rows so far (rolling windows).
    block: Vec<f64>,
    entering: Vec<f64>,
    leaving: Vec<f64>,
}

impl WindowSums {
    pub fn new(width: usize, span: Span, lambda: f64) -> Self {
        let fade = match span {
            Span::Rolling(w) => {
                assert!(w > 0, "window must be positive");
                lambda.powi(w as i32)
            }
            Span::Expanding => 0.0,
        };
        Self {
            span,
            lambda,
            fade,
            sums: vec![0.0; width],
            block: vec![0.0; width],
            entering: vec![0.0; width],
            leaving: vec![0.0; width],
        }
    }

    /// The buffer for the row entering the window: fill every entry.
    #[inline(always)]
    pub fn entering(&mut self) -> &mut [f64] {
        &mut self.entering
    }

    /// The row that leaves the window when row `t` enters, if one does.
    #[inline(always)]
    pub fn leaving_row(&self, t: usize) -> Option<usize> {
        match self.span {
            Span::Rolling(w) if t >= w => Some(t - w),
            _ => None,
        }
    }

    /// The buffer for the row leaving the window: fill every entry.
    #[inline(always)]
    pub fn leaving(&mut self) -> &mut [f64] {
        &mut self.leaving
    }

    /// Takes in row `t` (and lets the leaving row go): the sums over the window ending at `t`.
    #[inline(always)]
    pub fn advance(&mut self, t: usize) -> &[f64] {
        // Without decay every weight is 1: plain additions, no multiplications.
        let (lambda, fade, weighted) = (self.lambda, self.fade, self.lambda != 1.0);
        let add = |sums: &mut [f64], row: &[f64]| {
            if weighted {
                sums.iter_mut()
                    .zip(row)
                    .for_each(|(s, g)| *s = lambda * *s + g);
            } else {
                sums.iter_mut().zip(row).for_each(|(s, g)| *s += g);
            }
        };
        match self.span {
            Span::Expanding => add(&mut self.sums, &self.entering),
            Span::Rolling(w) => {
                if t % w == 0 {
                    self.block.fill(0.0);
                }
                add(&mut self.block, &self.entering);
                if t < w {
                    add(&mut self.sums, &self.entering);
                } else {
                    let rows = self.sums.iter_mut().zip(&self.entering).zip(&self.leaving);
                    if weighted {
                        rows.for_each(|((s, g), o)| *s = lambda * *s + g - fade * o);
                    } else {
                        rows.for_each(|((s, g), o)| *s += g - o);
                    }
                }
                // A complete block is exactly the window: restart from its direct sum.
                if t % w == w - 1 {
                    self.sums.copy_from_slice(&self.block);
                }
            }
        }
        &self.sums
    }
}

/// Streams window sums of `width`-long row vectors over `n_rows` rows.
///
/// `fill_row(t, g)` writes the vector of row `t` into `g` (every entry); rows outside
/// the data never get asked for. `emit(t, sums)` receives the weighted sum over the
/// window ending at `t`: `sum over rows r in the window of lambda^(t - r) * g_r`.
/// Rows are filled at most twice each (on entering and on leaving the window).
pub fn for_each_window(
    n_rows: usize,
    width: usize,
    span: Span,
    lambda: f64,
    mut fill_row: impl FnMut(usize, &mut [f64]),
    mut emit: impl FnMut(usize, &[f64]),
) {
    let mut window = WindowSums::new(width, span, lambda);
    for t in 0..n_rows {
        fill_row(t, window.entering());
        if let Some(r) = window.leaving_row(t) {
            fill_row(r, window.leaving());
        }
        emit(t, window.advance(t));
    }
}

/// Counts of flagged rows per window (integers: sliding add/remove is exact).
pub fn window_counts(flags: &[bool], span: Span) -> Vec<u32> {
    let mut counts = Vec::with_capacity(flags.len());
    let mut current: u32 = 0;
    for (t, &flag) in flags.iter().enumerate() {
        current += u32::from(flag);
        if let Span::Rolling(w) = span {
            if t >= w && flags[t - w] {
                current -= 1;
            }
        }
        counts.push(current);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(values: &[[f64; 2]], t: usize, span: Span, lambda: f64) -> [f64; 2] {
        let first = match span {
            Span::Rolling(w) => (t + 1).saturating_sub(w),
            Span::Expanding => 0,
        };
        let mut s = [0.0; 2];
        for (r, v) in values.iter().enumerate().take(t + 1).skip(first) {
            let weight = lambda.powi((t - r) as i32);
            s[0] += weight * v[0];
            s[1] += weight * v[1];
        }
        s
    }

    #[test]
    fn window_sums_match_direct_sums() {
        let values: Vec<[f64; 2]> = (0..53)
            .map(|i| [((i * 37) % 17) as f64 - 8.0, (i as f64 * 0.7).sin()])
            .collect();
        for span in [
            Span::Rolling(1),
            Span::Rolling(5),
            Span::Rolling(13),
            Span::Rolling(53),
            Span::Rolling(80),
            Span::Expanding,
        ] {
            for lambda in [1.0, 0.9, 0.5f64.powf(1.0 / 7.0)] {
                let mut seen = 0;
                for_each_window(
                    values.len(),
                    2,
                    span,
                    lambda,
                    |t, g| g.copy_from_slice(&values[t]),
                    |t, sums| {
                        let expected = direct(&values, t, span, lambda);
                        for k in 0..2 {
                            assert!(
                                (sums[k] - expected[k]).abs() <= 1e-12 * (1.0 + expected[k].abs()),
                                "{span:?} lambda={lambda} t={t} k={k}: {} vs {}",
                                sums[k],
                                expected[k]
                            );
                        }
                        assert_eq!(t, seen);
                        seen += 1;
                    },
                );
                assert_eq!(seen, values.len());
            }
        }
    }

    #[test]
    fn sums_do_not_drift_over_long_series() {
        // Large values of alternating sign: add/remove drifts here, blocks do not.
        let n = 20_000;
        let values: Vec<[f64; 2]> = (0..n)
            .map(|i| {
                let big = if i % 2 == 0 { 1e8 } else { -1e8 };
                [big + (i % 7) as f64 * 1e-3, 1.0]
            })
            .collect();
        let w = 252;
        for_each_window(
            n,
            2,
            Span::Rolling(w),
            1.0,
            |t, g| g.copy_from_slice(&values[t]),
            |t, sums| {
                if t % 997 == 0 || t == n - 1 {
                    let expected = direct(&values, t, Span::Rolling(w), 1.0);
                    assert!((sums[0] - expected[0]).abs() < 1e-6, "t={t}");
                    assert_eq!(sums[1], expected[1]);
                }
            },
        );
    }

    #[test]
    fn counts_slide_exactly() {
        let flags: Vec<bool> = (0..40).map(|i| i % 3 != 0).collect();
        let counts = window_counts(&flags, Span::Rolling(7));
        for t in 0..40usize {
            let first = (t + 1).saturating_sub(7);
            let expected = flags[first..=t].iter().filter(|&&f| f).count() as u32;
            assert_eq!(counts[t], expected);
        }
        assert_eq!(*window_counts(&flags, Span::Expanding).last().unwrap(), 26);
    }
}
