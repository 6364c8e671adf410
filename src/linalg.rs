//! Dense helpers for the tiny symmetric positive-definite systems of regression
//! windows (P x P, P = regressors), solved for many assets ("lanes") at once.
//!
//! Matrices and vectors are stored component-major: entry (i, k), k <= i, of lane l of
//! a batch of symmetric P x P matrices is at `(i (i + 1) / 2 + k) * lanes + l` (packed
//! lower triangles, the order in which window sums of x x' are kept), entry i of a
//! batch of vectors at `i * lanes + l`. Every step of the algorithms then runs across
//! lanes over contiguous memory and vectorises, including the square roots and divisions;
//! a general linear-algebra crate would solve one tiny system per call instead.
//! A single system is simply a batch of one lane; a large one goes to faer
//! ([`LargeSystem`]).

use faer::dyn_stack::{MemBuffer, MemStack, StackReq};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_inverse;
use faer::{Accum, Mat, MatMut, Par};

/// A regressor whose residual variance, after projecting out the regressors before it,
/// falls below this fraction of its own sum of squares is treated as collinear
/// (variance inflation factor above 1e10): the window has no reliable solution.
pub const COLLINEARITY_TOLERANCE: f64 = 1e-10;

/// Entries of a packed P x P lower triangle.
pub const fn packed_len(p: usize) -> usize {
    p * (p + 1) / 2
}

/// Index of diagonal entry (i, i) in a packed P x P lower triangle.
pub const fn packed_diagonal(i: usize) -> usize {
    packed_len(i + 1) - 1
}

/// Offset of entry (i, k), k <= i, of the first lane.
#[inline(always)]
fn at(i: usize, k: usize, lanes: usize) -> usize {
    (i * (i + 1) / 2 + k) * lanes
}

/// `a[target..] -= a[x..] * a[y..]` across lanes; both factors are stored before the target.
#[inline(always)]
fn subtract_product(a: &mut [f64], target: usize, x: usize, y: usize, lanes: usize) {
    let (head, tail) = a.split_at_mut(target);
    let (x, y) = (&head[x..x + lanes], &head[y..y + lanes]);
    for ((t, x), y) in tail[..lanes].iter_mut().zip(x).zip(y) {
        *t -= x * y;
    }
}

/// Clears `ok` when `pivot`, the diagonal entry left after projecting out the earlier
/// regressors, is not clearly positive next to the regressor's own `diagonal` entry,
/// keeps the smallest such share in `least`, then puts 1 / sqrt(pivot) in that
/// entry's place.
#[inline(always)]
fn take_pivot(ok: &mut bool, least: &mut f64, diagonal: &mut f64, pivot: f64) {
    // Written so that a NaN pivot also counts as collinear.
    let independent = pivot.partial_cmp(&(COLLINEARITY_TOLERANCE * *diagonal))
        == Some(std::cmp::Ordering::Greater);
    *ok &= independent;
    *least = least.min(pivot / *diagonal);
    *diagonal = 1.0 / pivot.sqrt();
}

/// In-place Cholesky factorisation A = L L' of a batch; each packed matrix becomes L,
/// except that the diagonal holds 1 / L_kk, so that the solves multiply where they
/// would divide.
/// Clears `ok[l]` for lanes whose columns are (numerically) collinear; their
/// factors are then meaningless but finite or NaN, never a panic.
/// `least[l]` receives the smallest share of a regressor's sum of squares left once
/// the earlier ones are projected out (1 / its variance inflation factor): solutions
/// and residual sums of squares formed from the factors carry rounding errors of
/// about eps / `least` relative to the data's scale.
/// `scratch` needs `lanes` entries.
#[inline(always)]
pub fn cholesky(
    a: &mut [f64],
    p: usize,
    lanes: usize,
    ok: &mut [bool],
    least: &mut [f64],
    scratch: &mut [f64],
) {
    least.fill(1.0);
    for k in 0..p {
        let kk = at(k, k, lanes);
        let (head, tail) = a.split_at_mut(kk);
        let diagonal = &mut tail[..lanes];
        if k == 0 {
            for ((ok, least), d) in ok.iter_mut().zip(least.iter_mut()).zip(diagonal.iter_mut()) {
                let pivot = *d;
                take_pivot(ok, least, d, pivot);
            }
        } else {
            // a_kk - sum over m < k of l_km^2, formed apart: a_kk is the yardstick.
            let pivot = &mut scratch[..lanes];
            let row = |m: usize| &head[at(k, m, lanes)..][..lanes];
            let terms = pivot.iter_mut().zip(diagonal.iter()).zip(row(0));
            terms.for_each(|((p, d), x)| *p = d - x * x);
            for m in 1..k {
                pivot.iter_mut().zip(row(m)).for_each(|(p, x)| *p -= x * x);
            }
            let entries = ok.iter_mut().zip(least.iter_mut());
            let entries = entries.zip(diagonal.iter_mut()).zip(pivot.iter());
            entries.for_each(|(((ok, least), d), &pivot)| take_pivot(ok, least, d, pivot));
        }
        for i in (k + 1)..p {
            let ik = at(i, k, lanes);
            for m in 0..k {
                subtract_product(a, ik, at(i, m, lanes), at(k, m, lanes), lanes);
            }
            let (head, tail) = a.split_at_mut(ik);
            let inverse_diagonal = &head[kk..kk + lanes];
            tail[..lanes]
                .iter_mut()
                .zip(inverse_diagonal)
                .for_each(|(v, d)| *v *= d);
        }
    }
}

/// Solves L z = b in place for a batch (forward substitution; `b` is p x lanes).
#[inline(always)]
pub fn forward_solve(l: &[f64], p: usize, lanes: usize, b: &mut [f64]) {
    for i in 0..p {
        let (done, rest) = b.split_at_mut(i * lanes);
        let bi = &mut rest[..lanes];
        for m in 0..i {
            let lim = &l[at(i, m, lanes)..][..lanes];
            let bm = &done[m * lanes..(m + 1) * lanes];
            bi.iter_mut()
                .zip(lim)
                .zip(bm)
                .for_each(|((b, l), z)| *b -= l * z);
        }
        let inverse_lii = &l[at(i, i, lanes)..][..lanes];
        bi.iter_mut().zip(inverse_lii).for_each(|(b, d)| *b *= d);
    }
}

/// Solves L' x = z in place for a batch (backward substitution).
#[inline(always)]
pub fn backward_solve(l: &[f64], p: usize, lanes: usize, z: &mut [f64]) {
    for i in (0..p).rev() {
        let (head, later) = z.split_at_mut((i + 1) * lanes);
        let zi = &mut head[i * lanes..];
        for m in (i + 1)..p {
            let lmi = &l[at(m, i, lanes)..][..lanes];
            let xm = &later[(m - i - 1) * lanes..(m - i) * lanes];
            zi.iter_mut()
                .zip(lmi)
                .zip(xm)
                .for_each(|((z, l), x)| *z -= l * x);
        }
        let inverse_lii = &l[at(i, i, lanes)..][..lanes];
        zi.iter_mut().zip(inverse_lii).for_each(|(z, d)| *z *= d);
    }
}

/// Solves A x = b in place for a batch, given the Cholesky factors of A.
#[inline(always)]
pub fn cholesky_solve(l: &[f64], p: usize, lanes: usize, b: &mut [f64]) {
    forward_solve(l, p, lanes, b);
    backward_solve(l, p, lanes, b);
}

/// v' A^-1 v = |L^-1 v|^2 per lane, for one vector `v` (p entries) shared by all lanes.
/// `scratch` needs `p * lanes` entries.
#[inline(always)]
pub fn inverse_quadratic_form(
    l: &[f64],
    p: usize,
    lanes: usize,
    v: &[f64],
    out: &mut [f64],
    scratch: &mut [f64],
) {
    let z = &mut scratch[..p * lanes];
    for (row, value) in z.chunks_exact_mut(lanes).zip(v) {
        row.fill(*value);
    }
    forward_solve(l, p, lanes, z);
    out[..lanes].fill(0.0);
    for row in z.chunks_exact(lanes) {
        out.iter_mut().zip(row).for_each(|(o, z)| *o += z * z);
    }
}

/// The diagonal of A^-1 per lane (p x lanes): squared column norms of L^-1.
/// `scratch` needs `p * lanes` entries.
#[inline(always)]
pub fn inverse_diagonal(
    l: &[f64],
    p: usize,
    lanes: usize,
    diagonal: &mut [f64],
    scratch: &mut [f64],
) {
    let z = &mut scratch[..p * lanes];
    for (k, d) in diagonal.chunks_exact_mut(lanes).enumerate().take(p) {
        z.fill(0.0);
        z[k * lanes..(k + 1) * lanes].fill(1.0);
        forward_solve(l, p, lanes, z);
        d.fill(0.0);
        for row in z.chunks_exact(lanes) {
            d.iter_mut().zip(row).for_each(|(d, z)| *d += z * z);
        }
    }
}

/// The full inverse A^-1 of a single matrix (lanes = 1), row-major and symmetric.
/// `scratch` needs `p * p` entries.
pub fn inverse(l: &[f64], p: usize, out: &mut [f64], scratch: &mut [f64]) {
    let mut column = vec![0.0; p];
    for k in 0..p {
        column.fill(0.0);
        column[k] = 1.0;
        cholesky_solve(l, p, 1, &mut column);
        for (i, value) in column.iter().enumerate() {
            scratch[i * p + k] = *value;
        }
    }
    // Symmetrise: the two triangles differ only by rounding.
    for i in 0..p {
        for k in 0..p {
            out[i * p + k] = 0.5 * (scratch[i * p + k] + scratch[k * p + i]);
        }
    }
}

/// Above this many regressors a single system is factorised and inverted by faer's
/// blocked routines instead, many times faster there (measured: a 100-regressor window
/// in 0.1 ms against 3 ms; 2001 regressors in 0.3 s).
pub const LARGE_SYSTEM: usize = 32;

/// One large system A (packed lower triangle, as the window sums keep it) at a time:
/// its Cholesky factor and the working memory of the routines, reused from one to the next.
pub struct LargeSystem {
    factor: Mat<f64>,
    buffer: MemBuffer,
}

impl LargeSystem {
    pub fn new(p: usize) -> Self {
        let factor_scratch =
            llt::factor::cholesky_in_place_scratch::<f64>(p, Par::Seq, Default::default());
        let inverse_scratch = StackReq::new::<f64>(p * p);
        Self {
            factor: Mat::zeros(p, p),
            buffer: MemBuffer::new(factor_scratch.or(inverse_scratch)),
        }
    }

    /// Factorises `packed` = L L': whether it is safely invertible, and the smallest
    /// share of a regressor's sum of squares left once the earlier ones are projected
    /// out, with the rule and meaning of [`cholesky`].
    pub fn factorise(&mut self, packed: &[f64]) -> (bool, f64) {
        let p = self.factor.nrows();
        let mut entries = packed.iter();
        for i in 0..p {
            for k in 0..=i {
                self.factor[(i, k)] = *entries.next().expect("a packed triangle");
            }
        }
        let diagonal: Vec<f64> = (0..p).map(|i| self.factor[(i, i)]).collect();
        let stack = MemStack::new(&mut self.buffer);
        // Sequential: the other threads are fitting assets meanwhile, and the results
        // must not depend on the number of threads.
        let factorised = llt::factor::cholesky_in_place(
            self.factor.as_mut(),
            Default::default(),
            Par::Seq,
            stack,
            Default::default(),
        );
        if factorised.is_err() {
            return (false, 0.0);
        }
        let (mut ok, mut least) = (true, 1.0);
        for (i, &d) in diagonal.iter().enumerate() {
            let l = self.factor[(i, i)];
            let mut inverse_root = d;
            take_pivot(&mut ok, &mut least, &mut inverse_root, l * l);
        }
        (ok, least)
    }

    /// Solves A x = b in place for the matrix last factorised.
    pub fn solve(&mut self, b: &mut [f64]) {
        let p = self.factor.nrows();
        let rhs = MatMut::from_column_major_slice_mut(&mut b[..p], p, 1);
        let stack = MemStack::new(&mut self.buffer);
        llt::solve::solve_in_place(self.factor.as_ref(), rhs, Par::Seq, stack);
    }

    /// The inverse A^-1 = L^-T L^-1 of the matrix last factorised, row-major and
    /// symmetric, into `out`; gives up (`false`) when `stop()` says so between the two
    /// halves of the work, each p^3 / 3 multiply-adds.
    pub fn invert(&mut self, out: &mut [f64], stop: impl Fn() -> bool) -> bool {
        let p = self.factor.nrows();
        let (mut lower_inverse, _) = MemStack::new(&mut self.buffer).make_with(p * p, |_| 0.0);
        let mut lower_inverse = MatMut::from_column_major_slice_mut(&mut lower_inverse, p, p);
        triangular_inverse::invert_lower_triangular(
            lower_inverse.as_mut(),
            self.factor.as_ref(),
            Par::Seq,
        );
        if stop() {
            return false;
        }
        let mut inverse = MatMut::from_row_major_slice_mut(&mut out[..p * p], p, p);
        let lower_inverse = lower_inverse.as_ref();
        triangular::matmul(
            inverse.as_mut(),
            BlockStructure::TriangularLower,
            Accum::Replace,
            lower_inverse.transpose(),
            BlockStructure::TriangularUpper,
            lower_inverse,
            BlockStructure::TriangularLower,
            1.0,
            Par::Seq,
        );
        // Only the lower triangle is written.
        for i in 0..p {
            for k in 0..i {
                inverse[(k, i)] = inverse[(i, k)];
            }
        }
        true
    }
}

/// v' A v for a row-major P x P matrix `a`.
pub fn quadratic_form(a: &[f64], v: &[f64]) -> f64 {
    a.chunks_exact(v.len())
        .zip(v)
        .map(|(row, vi)| vi * row.iter().zip(v).map(|(a, vk)| a * vk).sum::<f64>())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A = B'B + I, different for every seed.
    fn spd(p: usize, seed: usize) -> Vec<f64> {
        let b: Vec<f64> = (0..p * p)
            .map(|i| ((i * 7 + 3 + seed * 5) % 11) as f64 / 11.0 - 0.4)
            .collect();
        let mut a = vec![0.0; p * p];
        for i in 0..p {
            for k in 0..p {
                a[i * p + k] = (0..p).map(|m| b[m * p + i] * b[m * p + k]).sum::<f64>()
                    + if i == k { 1.0 } else { 0.0 };
            }
        }
        a
    }

    /// Interleaves single matrices (or vectors) into one component-major batch.
    fn batch(items: &[Vec<f64>]) -> Vec<f64> {
        let lanes = items.len();
        let mut out = vec![0.0; items[0].len() * lanes];
        for (l, item) in items.iter().enumerate() {
            for (c, v) in item.iter().enumerate() {
                out[c * lanes + l] = *v;
            }
        }
        out
    }

    /// The packed lower triangles of row-major p x p matrices.
    fn lower(matrices: &[Vec<f64>], p: usize) -> Vec<Vec<f64>> {
        let pairs = || (0..p).flat_map(|i| (0..=i).map(move |k| (i, k)));
        let pack = |a: &Vec<f64>| pairs().map(|(i, k)| a[i * p + k]).collect();
        matrices.iter().map(pack).collect()
    }

    #[test]
    fn batched_solves_and_forms_agree_with_the_definitions() {
        for p in 1..=7 {
            let lanes = 5;
            let matrices: Vec<Vec<f64>> = (0..lanes).map(|s| spd(p, s)).collect();
            let rhs: Vec<Vec<f64>> = (0..lanes)
                .map(|s| (0..p).map(|i| i as f64 - 1.5 + s as f64).collect())
                .collect();
            let mut factors = batch(&lower(&matrices, p));
            let mut ok = vec![true; lanes];
            let mut scratch = vec![0.0; p * p * lanes];
            cholesky(&mut factors, p, lanes, &mut ok, &mut [0.0; 5], &mut scratch);
            assert!(ok.iter().all(|&o| o));
            let mut x = batch(&rhs);
            cholesky_solve(&factors, p, lanes, &mut x);
            let mut diagonal = vec![0.0; p * lanes];
            inverse_diagonal(&factors, p, lanes, &mut diagonal, &mut scratch);
            let v: Vec<f64> = (0..p).map(|i| 0.5 - i as f64).collect();
            let mut forms = vec![0.0; lanes];
            inverse_quadratic_form(&factors, p, lanes, &v, &mut forms, &mut scratch);
            for (l, a) in matrices.iter().enumerate() {
                // A x = b
                for i in 0..p {
                    let s: f64 = (0..p).map(|m| a[i * p + m] * x[m * lanes + l]).sum();
                    assert!((s - rhs[l][i]).abs() < 1e-12, "p={p} lane={l}");
                }
                // The single-lane inverse agrees with the batched diagonal and form.
                let single: Vec<f64> = (0..packed_len(p)).map(|c| factors[c * lanes + l]).collect();
                let (mut inv, mut tmp) = (vec![0.0; p * p], vec![0.0; p * p]);
                inverse(&single, p, &mut inv, &mut tmp);
                for i in 0..p {
                    for k in 0..p {
                        let s: f64 = (0..p).map(|m| a[i * p + m] * inv[m * p + k]).sum();
                        assert!((s - f64::from(u8::from(i == k))).abs() < 1e-12);
                    }
                    assert!((diagonal[i * lanes + l] - inv[i * p + i]).abs() < 1e-12);
                }
                let direct: f64 = (0..p)
                    .map(|i| (0..p).map(|k| v[i] * inv[i * p + k] * v[k]).sum::<f64>())
                    .sum();
                assert!((forms[l] - direct).abs() < 1e-12 * direct.abs().max(1.0));
            }
        }
    }

    #[test]
    fn collinear_lanes_are_flagged_without_disturbing_the_others() {
        // Lane 0 healthy, lane 1: second column twice the first, lane 2: zero column,
        // lane 3: NaN.
        let matrices = vec![
            vec![2.0, 0.5, 0.5, 1.0],
            vec![1.0, 2.0, 2.0, 4.0],
            vec![1.0, 0.0, 0.0, 0.0],
            vec![f64::NAN, 0.0, 0.0, 1.0],
        ];
        let mut a = batch(&lower(&matrices, 2));
        let mut ok = vec![true; 4];
        let mut least = [0.0; 4];
        cholesky(&mut a, 2, 4, &mut ok, &mut least, &mut [0.0; 4]);
        assert_eq!(ok, vec![true, false, false, false]);
        // Lane 0: 1 - 0.5^2 / (2 * 1) of the second column's sum of squares is left.
        assert!((least[0] - 0.875).abs() < 1e-15);
        assert_eq!(least[1], 0.0);
        // The diagonal holds 1 / L_kk.
        assert!((a[0] - 0.5f64.sqrt()).abs() < 1e-15);
    }
}
