//! Sliding-window sums of per-row vectors, streamed in date order.
//!
//! Rows are grouped in blocks of `W`. A window ending inside block k covers the tail
//! of block k-1 and the head of block k. The head is a running sum; the tail is block
//! k-1's total minus the rows of block k-1 that have already left the window, both
//! summed forward in the same order with the same weights. So:
//!
//! - rounding never builds up over more than one block, however long the series;
//! - when the rows still inside are all zero the tail is exactly zero (the two sums
//!   are then bitwise equal), so a factor that is zero throughout a window gives an
//!   exactly singular cross-product and is reported as collinear, not as garbage;
//! - the state is a few vectors per sum, with no per-window buffer.
//!
//! Exponential weights follow the same scheme with each row weighted relative to its
//! block's last row, rescaled by a power of `lambda` when the parts are joined.
//!
//! Rows that have left the window are still part of the previous block's total, so a
//! huge row (a bad tick) that left leaves behind the rounding error of its own size:
//! eps times the block's total, not times the window's. For entries that are sums of
//! non-negative terms (squares) this is measured directly: when the previous block's
//! share exceeds [`LOSS_LIMIT`] times the window's sum, the caller sums the rows of
//! the previous block still inside the window again from scratch
//! ([`rebuild_tail`](WindowSums::rebuild_tail)), and from then on only those rows are
//! subtracted from. Every other entry is a sum of products whose rounding is bounded,
//! by Cauchy-Schwarz, by the rounding of the squares of its two factors, so checking
//! the squares keeps every entry within `LOSS_LIMIT` times eps of its window's scale.
//! On data without such rows the check never fires and nothing else changes.

use std::ops::Range;

/// How many times the previous block's part of a sum of squares may exceed the
/// window's own sum before the window's tail is summed again: at most 8 bits lost.
pub const LOSS_LIMIT: f64 = 256.0;

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
/// [`resuming_at`](WindowSums::resuming_at) lets a sweep cover only the rows from some
/// date on, so that consecutive stretches of dates can be swept independently.
///
/// Driving it from the caller (rather than through callbacks) keeps all the per-row
/// work inside the caller's function, so it is compiled with the caller's instruction
/// set (see the AVX2 dispatch in `exposures`).
pub struct WindowSums {
    span: Span,
    lambda: f64,
    /// The first row stepped in: rows before it never enter, so they never leave.
    first: usize,
    /// powers[l] = lambda^l for l = 0..=W (rolling windows).
    powers: Vec<f64>,
    /// Rows of the current block so far, weighted relative to the current row.
    prefix: Vec<f64>,
    /// Rows of the current block so far, weighted relative to the block's last row.
    current: Vec<f64>,
    /// The previous block's total, weighted relative to its last row.
    previous: Vec<f64>,
    /// The previous block's rows that have left the window, summed in the same order
    /// and with the same weights as `previous`.
    left: Vec<f64>,
    sums: Vec<f64>,
    entering: Vec<f64>,
    leaving: Vec<f64>,
}

impl WindowSums {
    pub fn new(width: usize, span: Span, lambda: f64) -> Self {
        let w = match span {
            Span::Rolling(w) => {
                assert!(w > 0, "window must be positive");
                w
            }
            Span::Expanding => 0,
        };
        let zeros = || vec![0.0; width];
        Self {
            span,
            lambda,
            first: 0,
            powers: std::iter::successors(Some(1.0), |p| Some(p * lambda))
                .take(w + 1)
                .collect(),
            prefix: zeros(),
            current: zeros(),
            previous: zeros(),
            left: zeros(),
            sums: zeros(),
            entering: zeros(),
            leaving: zeros(),
        }
    }

    /// Sums for rows from `start` on only, the same to the last bit as from row 0:
    /// stepping begins at [`first_row`](Self::first_row) instead.
    ///
    /// A rolling window's sums at the rows of block k depend only on blocks k-1 and k,
    /// and the state is reset at each block's end, so stepping may begin at the start
    /// of the block before the one holding `start`. An expanding window begins at row 0.
    pub fn resuming_at(self, start: usize) -> Self {
        let first = match self.span {
            Span::Rolling(w) => (start - start % w).saturating_sub(w),
            Span::Expanding => 0,
        };
        Self { first, ..self }
    }

    /// The row to step in first.
    pub fn first_row(&self) -> usize {
        self.first
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
            Span::Rolling(w) if t >= self.first + w => Some(t - w),
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
        // Moved out for the step and back: the buffers are only read meanwhile.
        let entering = std::mem::take(&mut self.entering);
        let leaving = std::mem::take(&mut self.leaving);
        self.step(t, entering.as_slice(), Some(leaving.as_slice()));
        self.entering = entering;
        self.leaving = leaving;
        self.sums(t)
    }

    /// [`advance`](Self::advance) for rows that are outer products (see [`Outer`]), which
    /// are summed without being written out first. `leaving` is needed when
    /// [`leaving_row`](Self::leaving_row) gives one. Same operations, same results.
    #[inline(always)]
    pub fn advance_outer(
        &mut self,
        t: usize,
        entering: &Outer<'_>,
        leaving: Option<&Outer<'_>>,
    ) -> &[f64] {
        self.step(t, entering, leaving);
        self.sums(t)
    }

    /// [`advance_outer`](Self::advance_outer) with the sums left in `out` (one entry per
    /// column), which the caller may then work on in place: same operations, same results.
    #[inline(always)]
    pub fn advance_outer_into(
        &mut self,
        t: usize,
        entering: &Outer<'_>,
        leaving: Option<&Outer<'_>>,
        out: &mut Vec<f64>,
    ) {
        assert_eq!(out.len(), self.sums.len(), "one entry per column");
        // The sums are written afresh at every step that produces them and never read
        // back, so the caller's buffer can stand in for them.
        std::mem::swap(&mut self.sums, out);
        self.step(t, entering, leaving);
        std::mem::swap(&mut self.sums, out);
        if !self.sums_written(t) {
            out.copy_from_slice(&self.prefix);
        }
    }

    /// Adds row `t`; `leaving` is only read once a row leaves the window (t >= W).
    #[inline(always)]
    fn step<R: Row + ?Sized>(&mut self, t: usize, entering: &R, leaving: Option<&R>) {
        let lambda = self.lambda;
        // Without decay every weight is 1: plain additions, no multiplications.
        let weighted = lambda != 1.0;
        if let (Span::Rolling(w), Some(leaving), false) = (self.span, leaving, weighted) {
            if t >= w && t % w != w - 1 {
                // The usual step, in one pass over the state instead of three where that
                // is faster: the same operations as below (the scale of an unweighted
                // window is exactly 1).
                let mut state = Slide {
                    prefix: &mut self.prefix,
                    left: &mut self.left,
                    sums: &mut self.sums,
                    previous: &self.previous,
                };
                if entering.slide(leaving, &mut state) {
                    return;
                }
            }
        }
        if weighted {
            entering.apply(&mut self.prefix, |p, g| *p = lambda * *p + g);
        } else {
            entering.apply(&mut self.prefix, |p, g| *p += g);
        }
        let Span::Rolling(w) = self.span else {
            return;
        };
        let offset = t % w; // position of row t in its block
        let weight = self.powers[w - 1 - offset];
        if weighted {
            entering.apply(&mut self.current, |c, g| *c += weight * g);
        }
        // Row t - w leaves: it sits at the same offset in the previous block.
        if let Some(leaving) = leaving.filter(|_| t >= w) {
            if weighted {
                leaving.apply(&mut self.left, |l, g| *l += weight * g);
            } else {
                leaving.apply(&mut self.left, |l, g| *l += g);
            }
        }
        if offset == w - 1 {
            // The block is complete and is exactly the window; it becomes the previous one.
            let finished = if weighted {
                &mut self.current
            } else {
                &mut self.prefix
            };
            self.previous.copy_from_slice(finished);
            self.sums.copy_from_slice(finished);
            for v in [&mut self.prefix, &mut self.current, &mut self.left] {
                v.fill(0.0);
            }
        } else if t >= w {
            // Window = the previous block's rows still inside (its total minus the rows
            // that left: exactly zero when those rows are) + the current block so far.
            let scale = self.powers[offset + 1];
            let parts = self
                .sums
                .iter_mut()
                .zip(&self.previous)
                .zip(&self.left)
                .zip(&self.prefix);
            parts.for_each(|(((s, total), left), p)| *s = scale * (total - left) + p);
        }
    }

    /// The factor by which the previous block's total is scaled into the window ending
    /// at `t`, when that window's sums are formed from it (else `None`: they are plain
    /// running sums, which never subtract).
    #[inline(always)]
    fn tail_scale(&self, t: usize) -> Option<f64> {
        match self.span {
            Span::Rolling(w) if t >= w && t % w != w - 1 => Some(self.powers[t % w + 1]),
            _ => None,
        }
    }

    /// Whether any of the `entries` of the window's sums at `t` (`sums`, as returned by
    /// the step of row `t`; entries that are sums of non-negative terms) may have lost
    /// digits to rows that have left: see [`LOSS_LIMIT`].
    #[inline(always)]
    pub fn lossy(&self, t: usize, sums: &[f64], entries: Range<usize>) -> bool {
        let Some(scale) = self.tail_scale(t) else {
            return false;
        };
        let (previous, sums) = (&self.previous[entries.clone()], &sums[entries]);
        // Not `any`: without an early exit the comparisons vectorise. Negated, so that a
        // NaN sum is lossy too.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        previous
            .iter()
            .zip(sums)
            .fold(false, |lossy, (&previous, &sum)| {
                lossy | !(scale * previous <= LOSS_LIMIT * sum)
            })
    }

    /// Sums the rows of the previous block that are still inside the window ending at
    /// `t` again from scratch for `entries`, after the step of row `t`: those entries'
    /// tails then hold exactly these rows, and their window sums in `sums` (as returned
    /// by that step) are formed again. `fill(r, values)` writes row `r`'s value of each
    /// of `entries`, in order, into `values`. Rows are summed forward with the weights
    /// of the step, and later leaving rows are subtracted in the same order, so a tail
    /// whose remaining rows are zero is still exactly zero.
    pub fn rebuild_tail(
        &mut self,
        t: usize,
        entries: &[usize],
        sums: &mut [f64],
        mut fill: impl FnMut(usize, &mut [f64]),
    ) {
        let (Some(scale), Span::Rolling(w)) = (self.tail_scale(t), self.span) else {
            return;
        };
        let weighted = self.lambda != 1.0;
        let block_start = t - t % w;
        let mut total = vec![0.0; entries.len()];
        let mut values = vec![0.0; entries.len()];
        // Rows before `first` never entered this sweep: they are not in the tail.
        for r in (t + 1 - w).max(self.first)..block_start {
            fill(r, &mut values);
            let weight = self.powers[w - 1 - r % w];
            for (s, &v) in total.iter_mut().zip(&values) {
                if weighted {
                    *s += weight * v;
                } else {
                    *s += v;
                }
            }
        }
        for (&e, &s) in entries.iter().zip(&total) {
            self.previous[e] = s;
            self.left[e] = 0.0;
            sums[e] = scale * s + self.prefix[e];
        }
    }

    /// [`rebuild_tail`](Self::rebuild_tail) for the window's own sums, as returned by
    /// [`advance`](Self::advance) or [`advance_outer`](Self::advance_outer).
    pub fn rebuild_own_tail(
        &mut self,
        t: usize,
        entries: &[usize],
        fill: impl FnMut(usize, &mut [f64]),
    ) {
        let mut sums = std::mem::take(&mut self.sums);
        self.rebuild_tail(t, entries, &mut sums, fill);
        self.sums = sums;
    }

    /// Takes in row `t`, asking `fill_row(r, g)` for the vector of each row `r` that
    /// enters or leaves, and sums the window's tail again when one of the `squares`
    /// entries shows that rows that left took digits with them (then returns `true`).
    /// The sums are then at [`sums`](Self::sums). [`for_each_window`] is this in a loop.
    pub fn advance_filled(
        &mut self,
        t: usize,
        squares: &[usize],
        mut fill_row: impl FnMut(usize, &mut [f64]),
    ) -> bool {
        fill_row(t, self.entering());
        if let Some(r) = self.leaving_row(t) {
            fill_row(r, self.leaving());
        }
        self.advance(t);
        let sums = self.sums(t);
        let rebuilt = squares.iter().any(|&e| self.lossy(t, sums, e..e + 1));
        if rebuilt {
            let every: Vec<usize> = (0..self.sums.len()).collect();
            self.rebuild_own_tail(t, &every, fill_row);
        }
        rebuilt
    }

    /// The sums over the window ending at `t`, once row `t` has been stepped in.
    #[inline(always)]
    pub fn sums(&self, t: usize) -> &[f64] {
        if self.sums_written(t) {
            &self.sums
        } else {
            &self.prefix
        }
    }

    /// Whether the step of row `t` wrote the window's sums (else they are the prefix).
    #[inline(always)]
    fn sums_written(&self, t: usize) -> bool {
        matches!(self.span, Span::Rolling(w) if t >= w || t % w == w - 1)
    }
}

/// A row vector made of segments `mask_scales[k] * mask`, then `scales[k] * values`,
/// then, when `square`, `values * values`: e.g. x_t,i x_t,k m_t,j, x_t,k y_t,j and
/// y_t,j^2 over assets j, with m the assets that have a return. Every segment is as long
/// as `values`; `mask_scales` may be empty.
pub struct Outer<'a> {
    pub mask_scales: &'a [f64],
    pub mask: &'a [f64],
    pub scales: &'a [f64],
    pub values: &'a [f64],
    pub square: bool,
}

impl<'a> Outer<'a> {
    /// Segments `scales[k] * values`, then `values * values` when `square`.
    pub fn new(scales: &'a [f64], values: &'a [f64], square: bool) -> Self {
        Self {
            mask_scales: &[],
            mask: &[],
            scales,
            values,
            square,
        }
    }

    /// Puts segments `mask_scales[k] * mask` in front.
    pub fn masked(self, mask_scales: &'a [f64], mask: &'a [f64]) -> Self {
        Self {
            mask_scales,
            mask,
            ..self
        }
    }
}

/// The state of an unweighted rolling window, stepped in one pass (see [`slide`]).
struct Slide<'a> {
    prefix: &'a mut [f64],
    left: &'a mut [f64],
    sums: &'a mut [f64],
    previous: &'a [f64],
}

impl Slide<'_> {
    /// The parts of the state that go with segments of `len` entries, in order.
    #[inline(always)]
    fn segments(&mut self, len: usize) -> impl Iterator<Item = Slide<'_>> {
        let own = self
            .prefix
            .chunks_exact_mut(len)
            .zip(self.left.chunks_exact_mut(len));
        let formed = self
            .sums
            .chunks_exact_mut(len)
            .zip(self.previous.chunks_exact(len));
        own.zip(formed)
            .map(|((prefix, left), (sums, previous))| Slide {
                prefix,
                left,
                sums,
                previous,
            })
    }
}

/// For every entry: the entering value joins the prefix, the leaving one the rows that
/// left, and the window's sum is the previous block's total less those plus the prefix.
#[inline(always)]
fn slide(
    state: Slide<'_>,
    entering: impl Iterator<Item = f64>,
    leaving: impl Iterator<Item = f64>,
) {
    let own = state.prefix.iter_mut().zip(state.left.iter_mut());
    let formed = state.sums.iter_mut().zip(state.previous);
    for (((p, l), (s, total)), (g_in, g_out)) in own.zip(formed).zip(entering.zip(leaving)) {
        *p += g_in;
        *l += g_out;
        *s = (total - *l) + *p;
    }
}

/// A row entering or leaving a window, combined entry by entry into a running sum.
trait Row {
    /// Calls `f(sum, g)` for every entry `g` of the row and its running sum.
    fn apply(&self, sums: &mut [f64], f: impl Fn(&mut f64, f64));
    /// [`slide`] with this row entering and `leaving` (of the same shape) leaving, where
    /// one pass measured faster than three: only for rows of many segments. Returns
    /// whether it did; if not, the state is untouched.
    fn slide(&self, _leaving: &Self, _state: &mut Slide<'_>) -> bool {
        false
    }
}

impl Row for [f64] {
    #[inline(always)]
    fn apply(&self, sums: &mut [f64], f: impl Fn(&mut f64, f64)) {
        sums.iter_mut().zip(self).for_each(|(s, &g)| f(s, g));
    }
}

impl Row for Outer<'_> {
    #[inline(always)]
    fn apply(&self, sums: &mut [f64], f: impl Fn(&mut f64, f64)) {
        let mut segments = sums.chunks_exact_mut(self.values.len());
        for (&a, segment) in self.mask_scales.iter().zip(segments.by_ref()) {
            let pairs = segment.iter_mut().zip(self.mask);
            pairs.for_each(|(s, &m)| f(s, a * m));
        }
        for (&a, segment) in self.scales.iter().zip(segments.by_ref()) {
            let pairs = segment.iter_mut().zip(self.values);
            pairs.for_each(|(s, &v)| f(s, a * v));
        }
        if self.square {
            let segment = segments.next().expect("a segment for the squares");
            let pairs = segment.iter_mut().zip(self.values);
            pairs.for_each(|(s, &v)| f(s, v * v));
        }
    }

    /// Masked rows only: they carry a cross-product per asset, P (P + 1) / 2 more
    /// segments.
    #[inline(always)]
    fn slide(&self, leaving: &Self, state: &mut Slide<'_>) -> bool {
        if self.mask_scales.is_empty() {
            return false;
        }
        let (into, out) = (self, leaving);
        let mut segments = state.segments(self.values.len());
        let masked = into.mask_scales.iter().zip(out.mask_scales);
        for ((&a, &b), segment) in masked.zip(segments.by_ref()) {
            let entering = into.mask.iter().map(|&m| a * m);
            slide(segment, entering, out.mask.iter().map(|&m| b * m));
        }
        let scaled = into.scales.iter().zip(out.scales);
        for ((&a, &b), segment) in scaled.zip(segments.by_ref()) {
            let entering = into.values.iter().map(|&v| a * v);
            slide(segment, entering, out.values.iter().map(|&v| b * v));
        }
        if self.square {
            let segment = segments.next().expect("a segment for the squares");
            let entering = into.values.iter().map(|&v| v * v);
            slide(segment, entering, out.values.iter().map(|&v| v * v));
        }
        true
    }
}

/// Streams window sums of `width`-long row vectors over `n_rows` rows.
///
/// `fill_row(t, g)` writes the vector of row `t` into `g` (every entry); rows outside
/// the data never get asked for. `emit(t, sums)` receives the weighted sum over the
/// window ending at `t`: `sum over rows r in the window of lambda^(t - r) * g_r`.
/// Rows are filled twice each (on entering and on leaving the window), and once more
/// when a window's tail is summed again.
///
/// `squares` lists the entries that are sums of non-negative terms: when one of them
/// shows that rows that left took digits with them (see [`LOSS_LIMIT`]) the window's
/// tail is summed again, and `emit` is told so by its third argument.
pub fn for_each_window(
    n_rows: usize,
    width: usize,
    span: Span,
    lambda: f64,
    squares: &[usize],
    mut fill_row: impl FnMut(usize, &mut [f64]),
    mut emit: impl FnMut(usize, &[f64], bool),
) {
    let mut window = WindowSums::new(width, span, lambda);
    for t in 0..n_rows {
        let rebuilt = window.advance_filled(t, squares, &mut fill_row);
        emit(t, window.sums(t), rebuilt);
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
                    &[],
                    |t, g| g.copy_from_slice(&values[t]),
                    |t, sums, _| {
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
    fn outer_rows_give_the_sums_of_their_written_out_rows() {
        // Rows x_t y_t' (masked and with squares), summed by advance_outer and by
        // advance_outer_into, equal to the last bit the sums of the rows written out.
        // Unweighted rolling windows of masked rows take the one-pass
        // step, the written-out rows the three-pass one.
        let n_rows = 40;
        let x: Vec<[f64; 2]> = (0..n_rows)
            .map(|t| [1.0, (t as f64 * 0.37).sin()])
            .collect();
        let y: Vec<[f64; 3]> = (0..n_rows)
            .map(|t| std::array::from_fn(|j| ((t * 7 + j * 3) % 11) as f64 - 5.0))
            .collect();
        let mask: Vec<[f64; 3]> = (0..n_rows)
            .map(|t| std::array::from_fn(|j| f64::from(u8::from((t + j) % 5 != 0))))
            .collect();
        let packed = |t: usize| [x[t][0] * x[t][0], x[t][1] * x[t][0], x[t][1] * x[t][1]];
        let written = |t: usize| -> Vec<f64> {
            let (xx, m) = (packed(t), mask[t]);
            let masked = xx.iter().flat_map(|&a| m.iter().map(move |&m| a * m));
            let scaled = x[t].iter().flat_map(|&a| y[t].iter().map(move |&v| a * v));
            let squares = y[t].iter().map(|&v| v * v);
            masked.chain(scaled).chain(squares).collect()
        };
        let width = 3 * 3 + 2 * 3 + 3;
        for span in [Span::Rolling(1), Span::Rolling(6), Span::Expanding] {
            for lambda in [1.0, 0.8] {
                let mut plain = WindowSums::new(width, span, lambda);
                let mut outer = WindowSums::new(width, span, lambda);
                let mut into = WindowSums::new(width, span, lambda);
                let mut out = vec![f64::NAN; width];
                for t in 0..n_rows {
                    let xx = packed(t);
                    let enter = Outer::new(&x[t], &y[t], true).masked(&xx, &mask[t]);
                    plain.entering().copy_from_slice(&written(t));
                    let leaving_row = plain.leaving_row(t);
                    let (leave_xx, leave) = match leaving_row {
                        Some(r) => {
                            plain.leaving().copy_from_slice(&written(r));
                            (packed(r), Some(r))
                        }
                        None => ([0.0; 3], None),
                    };
                    let leave =
                        leave.map(|r| Outer::new(&x[r], &y[r], true).masked(&leave_xx, &mask[r]));
                    let want: Vec<u64> = plain.advance(t).iter().map(|v| v.to_bits()).collect();
                    let got: Vec<u64> = outer
                        .advance_outer(t, &enter, leave.as_ref())
                        .iter()
                        .map(|v| v.to_bits())
                        .collect();
                    assert_eq!(got, want, "advance_outer {span:?} lambda={lambda} t={t}");
                    into.advance_outer_into(t, &enter, leave.as_ref(), &mut out);
                    let got: Vec<u64> = out.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(
                        got, want,
                        "advance_outer_into {span:?} lambda={lambda} t={t}"
                    );
                    // The caller may work on its sums in place without disturbing the window.
                    out.fill(f64::NAN);
                }
            }
        }
    }

    #[test]
    fn resumed_sweeps_give_the_sums_bit_for_bit() {
        let values: Vec<[f64; 2]> = (0..61)
            .map(|i| [(i as f64 * 0.91).sin() * 1e3, ((i * 13) % 7) as f64 + 0.1])
            .collect();
        let sweep = |span: Span, lambda: f64, start: usize| -> Vec<Vec<u64>> {
            let mut window = WindowSums::new(2, span, lambda).resuming_at(start);
            let mut sums = Vec::new();
            for t in window.first_row()..values.len() {
                window.entering().copy_from_slice(&values[t]);
                if let Some(r) = window.leaving_row(t) {
                    window.leaving().copy_from_slice(&values[r]);
                }
                let s = window.advance(t);
                if t >= start {
                    sums.push(s.iter().map(|v| v.to_bits()).collect());
                }
            }
            sums
        };
        for span in [
            Span::Rolling(1),
            Span::Rolling(6),
            Span::Rolling(20),
            Span::Expanding,
        ] {
            for lambda in [1.0, 0.8] {
                let full = sweep(span, lambda, 0);
                for start in [1, 5, 6, 7, 12, 19, 20, 40, 42, 59, 60] {
                    let first = WindowSums::new(2, span, lambda)
                        .resuming_at(start)
                        .first_row();
                    // From the start of the block before the one holding `start`.
                    let expected = match span {
                        Span::Rolling(w) => (start / w).saturating_sub(1) * w,
                        Span::Expanding => 0,
                    };
                    assert_eq!(first, expected, "{span:?} start={start}");
                    assert_eq!(
                        sweep(span, lambda, start),
                        full[start..],
                        "{span:?} lambda={lambda} start={start}"
                    );
                }
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
            &[],
            |t, g| g.copy_from_slice(&values[t]),
            |t, sums, _| {
                if t % 997 == 0 || t == n - 1 {
                    let expected = direct(&values, t, Span::Rolling(w), 1.0);
                    assert!((sums[0] - expected[0]).abs() < 1e-6, "t={t}");
                    assert_eq!(sums[1], expected[1]);
                }
            },
        );
    }

    #[test]
    fn windows_of_zero_rows_sum_to_exactly_zero() {
        // Irregular values, then a stretch of zeros longer than the window: once the
        // window holds only zeros its sums must be exactly 0, not rounding residue.
        let values: Vec<[f64; 2]> = (0..90)
            .map(|i| {
                if i < 40 {
                    [(i as f64 * 1.37).sin() * 1e3, 0.1 + i as f64 / 7.0]
                } else {
                    [0.0, 0.0]
                }
            })
            .collect();
        for w in [7, 13, 25] {
            for lambda in [1.0, 0.93] {
                for_each_window(
                    values.len(),
                    2,
                    Span::Rolling(w),
                    lambda,
                    &[],
                    |t, g| g.copy_from_slice(&values[t]),
                    |t, sums, _| {
                        if t >= 40 + w - 1 {
                            assert_eq!(sums, &[0.0, 0.0], "w={w} lambda={lambda} t={t}");
                        }
                    },
                );
            }
        }
    }

    #[test]
    fn a_huge_row_that_left_takes_no_digits_with_it() {
        // Products a b and squares a^2, b^2 of rows with one bad tick of a. Windows
        // without the tick are exact to rounding of their own size, however large it was.
        let n = 200;
        for bad in [1e3, 1e8, 1e12, 1e150] {
            let row = |t: usize| -> (f64, f64) {
                let a = if t == 61 {
                    bad
                } else {
                    (t as f64 * 0.37).sin() * 1e-2
                };
                (a, (t as f64 * 0.11).cos() * 1e-2 + 2e-3)
            };
            let fill = |t: usize, g: &mut [f64]| {
                let (a, b) = row(t);
                g.copy_from_slice(&[a * b, a * a, b * b]);
            };
            for w in [7, 25, 60] {
                for lambda in [1.0, 0.97] {
                    let mut rebuilt_any = false;
                    for_each_window(
                        n,
                        3,
                        Span::Rolling(w),
                        lambda,
                        &[1, 2],
                        fill,
                        |t, sums, rebuilt| {
                            rebuilt_any |= rebuilt;
                            if (61..61 + w).contains(&t) {
                                return;
                            }
                            let mut want = [0.0; 3];
                            for r in (t + 1).saturating_sub(w)..=t {
                                let mut g = [0.0; 3];
                                fill(r, &mut g);
                                let weight = lambda.powi((t - r) as i32);
                                want.iter_mut().zip(g).for_each(|(s, g)| *s += weight * g);
                            }
                            let scale = [(want[1] * want[2]).sqrt(), want[1], want[2]];
                            for k in 0..3 {
                                assert!(
                                    (sums[k] - want[k]).abs() <= 1e-13 * scale[k],
                                    "bad={bad:e} w={w} lambda={lambda} t={t} k={k}: {} vs {}",
                                    sums[k],
                                    want[k]
                                );
                            }
                        },
                    );
                    assert!(
                        rebuilt_any,
                        "bad={bad:e} w={w}: the tail was never summed again"
                    );
                }
            }
        }
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
