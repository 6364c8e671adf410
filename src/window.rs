//! Exact sliding-window sums of per-row vectors, streamed in date order.
//!
//! Adding the newest row and subtracting the oldest loses digits over thousands of
//! steps. Instead every rolling window is split at a block boundary (blocks of `W`
//! rows): the window is a suffix sum of one block plus a prefix sum of the next
//! (van Herk / Gil-Werman). Nothing is ever subtracted, so each window sum is as
//! accurate as summing its rows directly, at a cost of two passes over the rows.
//!
//! Exponential weights stay exact the same way: the prefix decays by `lambda` per
//! row, and the suffix (weighted relative to its block end) is rescaled by a power of
//! `lambda` when it is joined to the prefix.

/// Which rows a window covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// The last `W` rows up to and including the current one (fewer at the start).
    Rolling(usize),
    /// Every row from the first up to the current one.
    Expanding,
}

/// Streams window sums of `width`-long row vectors over `n_rows` rows.
///
/// `fill_row(t, g)` writes the vector of row `t` into `g` (every entry); rows outside
/// the data never get asked for. `emit(t, sums)` receives the weighted sum over the
/// window ending at `t`: `sum over rows r in the window of lambda^(t - r) * g_r`.
/// Rows are filled at most twice each.
#[inline(always)] // so that it takes on the instruction set of its caller (see exposures)
pub fn for_each_window(
    n_rows: usize,
    width: usize,
    span: Span,
    lambda: f64,
    mut fill_row: impl FnMut(usize, &mut [f64]),
    mut emit: impl FnMut(usize, &[f64]),
) {
    // Without decay every weight is 1: plain additions, no multiplications.
    let weighted = lambda != 1.0;
    let mut row = vec![0.0; width];
    let mut prefix = vec![0.0; width];
    let accumulate = |prefix: &mut [f64], row: &[f64]| {
        if weighted {
            prefix
                .iter_mut()
                .zip(row)
                .for_each(|(p, g)| *p = lambda * *p + g);
        } else {
            prefix.iter_mut().zip(row).for_each(|(p, g)| *p += g);
        }
    };
    match span {
        Span::Expanding => {
            for t in 0..n_rows {
                fill_row(t, &mut row);
                accumulate(&mut prefix, &row);
                emit(t, &prefix);
            }
        }
        Span::Rolling(w) => {
            assert!(w > 0, "window must be positive");
            // powers[l] = lambda^l for l = 0..=w
            let powers: Vec<f64> = std::iter::successors(Some(1.0), |p| Some(p * lambda))
                .take(w + 1)
                .collect();
            // suffix[i] = sum over rows r = start-w+i .. start-1 of lambda^(start-1-r) g_r,
            // with suffix[w] = 0: the tail of the block before the current one.
            let mut suffix = vec![0.0; (w + 1) * width];
            let mut window = vec![0.0; width];
            for start in (0..n_rows).step_by(w) {
                if start > 0 {
                    for i in (0..w).rev() {
                        fill_row(start - w + i, &mut row);
                        let (head, tail) = suffix.split_at_mut((i + 1) * width);
                        let (current, next) = (&mut head[i * width..], &tail[..width]);
                        let weight = powers[w - 1 - i];
                        if weighted {
                            for ((s, n), g) in current.iter_mut().zip(next).zip(&row) {
                                *s = weight * g + n;
                            }
                        } else {
                            for ((s, n), g) in current.iter_mut().zip(next).zip(&row) {
                                *s = g + n;
                            }
                        }
                    }
                }
                prefix.fill(0.0);
                for t in start..(start + w).min(n_rows) {
                    fill_row(t, &mut row);
                    accumulate(&mut prefix, &row);
                    if start == 0 {
                        emit(t, &prefix);
                        continue;
                    }
                    // The window starts at row t - w + 1 = start - w + i.
                    let i = t + 1 - start;
                    let tail = &suffix[i * width..(i + 1) * width];
                    let scale = powers[i];
                    if weighted {
                        for ((out, s), p) in window.iter_mut().zip(tail).zip(&prefix) {
                            *out = scale * s + p;
                        }
                    } else {
                        for ((out, s), p) in window.iter_mut().zip(tail).zip(&prefix) {
                            *out = s + p;
                        }
                    }
                    emit(t, &window);
                }
            }
        }
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
