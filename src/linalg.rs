//! Dense helpers for the tiny symmetric positive-definite systems of one regression
//! window (P x P, P = regressors). These run once per (date, asset) on the gap path,
//! millions of times per call, so they are plain loops over row-major slices with no
//! allocation; a general linear-algebra crate costs more in call overhead than the
//! arithmetic itself at this size.

/// A regressor whose residual variance, after projecting out the regressors before it,
/// falls below this fraction of its own sum of squares is treated as collinear
/// (variance inflation factor above 1e10): the window has no reliable solution.
pub const COLLINEARITY_TOLERANCE: f64 = 1e-10;

/// In-place Cholesky factorisation A = L L' of a row-major `p x p` matrix; the lower
/// triangle of `a` becomes L (the strict upper triangle is left untouched).
/// Returns `false` when a pivot shows the columns are (numerically) collinear.
#[inline(always)]
pub fn cholesky(a: &mut [f64], p: usize) -> bool {
    for k in 0..p {
        let own = a[k * p + k];
        let mut pivot = own;
        for m in 0..k {
            pivot -= a[k * p + m] * a[k * p + m];
        }
        // Written so that a NaN pivot also counts as collinear.
        if pivot.partial_cmp(&(COLLINEARITY_TOLERANCE * own)) != Some(std::cmp::Ordering::Greater) {
            return false;
        }
        let l_kk = pivot.sqrt();
        a[k * p + k] = l_kk;
        for i in (k + 1)..p {
            let mut s = a[i * p + k];
            for m in 0..k {
                s -= a[i * p + m] * a[k * p + m];
            }
            a[i * p + k] = s / l_kk;
        }
    }
    true
}

/// Solves L z = v in place (forward substitution with the factor from [`cholesky`]).
#[inline(always)]
pub fn forward_solve(l: &[f64], p: usize, v: &mut [f64]) {
    for i in 0..p {
        let mut s = v[i];
        for m in 0..i {
            s -= l[i * p + m] * v[m];
        }
        v[i] = s / l[i * p + i];
    }
}

/// Solves L' x = z in place (backward substitution).
#[inline(always)]
pub fn backward_solve(l: &[f64], p: usize, z: &mut [f64]) {
    for i in (0..p).rev() {
        let mut s = z[i];
        for m in (i + 1)..p {
            s -= l[m * p + i] * z[m];
        }
        z[i] = s / l[i * p + i];
    }
}

/// Solves A x = b in place given the Cholesky factor of A.
#[inline(always)]
pub fn cholesky_solve(l: &[f64], p: usize, b: &mut [f64]) {
    forward_solve(l, p, b);
    backward_solve(l, p, b);
}

/// v' A^-1 v = |L^-1 v|^2; `scratch` needs `p` entries.
#[inline(always)]
pub fn inverse_quadratic_form(l: &[f64], p: usize, v: &[f64], scratch: &mut [f64]) -> f64 {
    scratch[..p].copy_from_slice(&v[..p]);
    forward_solve(l, p, &mut scratch[..p]);
    scratch[..p].iter().map(|z| z * z).sum()
}

/// The diagonal of A^-1 from the Cholesky factor: column norms of L^-1.
/// `scratch` needs `p * p` entries (it receives L^-1).
#[inline(always)]
pub fn inverse_diagonal(l: &[f64], p: usize, diag: &mut [f64], scratch: &mut [f64]) {
    let inv = &mut scratch[..p * p];
    // Column k of L^-1 solves L c = e_k; it is zero above row k.
    for k in 0..p {
        for i in 0..k {
            inv[i * p + k] = 0.0;
        }
        inv[k * p + k] = 1.0 / l[k * p + k];
        for i in (k + 1)..p {
            let mut s = 0.0;
            for m in k..i {
                s -= l[i * p + m] * inv[m * p + k];
            }
            inv[i * p + k] = s / l[i * p + i];
        }
    }
    for (k, d) in diag.iter_mut().enumerate().take(p) {
        *d = (k..p).map(|i| inv[i * p + k] * inv[i * p + k]).sum();
    }
}

/// The full inverse A^-1 (row-major, symmetric) from the Cholesky factor.
/// `scratch` needs `p * p` entries.
pub fn inverse(l: &[f64], p: usize, out: &mut [f64], scratch: &mut [f64]) {
    let mut col = vec![0.0; p];
    for k in 0..p {
        col.iter_mut().for_each(|c| *c = 0.0);
        col[k] = 1.0;
        cholesky_solve(l, p, &mut col);
        for i in 0..p {
            scratch[i * p + k] = col[i];
        }
    }
    // Symmetrise: the two triangles differ only by rounding.
    for i in 0..p {
        for k in 0..p {
            out[i * p + k] = 0.5 * (scratch[i * p + k] + scratch[k * p + i]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(p: usize) -> Vec<f64> {
        // A = B'B + I with a fixed, well-conditioned B.
        let b: Vec<f64> = (0..p * p)
            .map(|i| ((i * 7 + 3) % 11) as f64 / 11.0 - 0.4)
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

    #[test]
    fn solve_inverse_and_forms_agree_with_the_definition() {
        for p in 1..=7 {
            let a = spd(p);
            let mut l = a.clone();
            assert!(cholesky(&mut l, p));
            let mut scratch = vec![0.0; p * p];
            let mut inv = vec![0.0; p * p];
            inverse(&l, p, &mut inv, &mut scratch);
            // A * A^-1 = I
            for i in 0..p {
                for k in 0..p {
                    let s: f64 = (0..p).map(|m| a[i * p + m] * inv[m * p + k]).sum();
                    let expected = if i == k { 1.0 } else { 0.0 };
                    assert!((s - expected).abs() < 1e-12, "p={p} ({i},{k}) {s}");
                }
            }
            let mut diag = vec![0.0; p];
            inverse_diagonal(&l, p, &mut diag, &mut scratch);
            for k in 0..p {
                assert!((diag[k] - inv[k * p + k]).abs() < 1e-12);
            }
            let v: Vec<f64> = (0..p).map(|i| i as f64 - 1.5).collect();
            let q = inverse_quadratic_form(&l, p, &v, &mut scratch);
            let direct: f64 = (0..p)
                .map(|i| (0..p).map(|k| v[i] * inv[i * p + k] * v[k]).sum::<f64>())
                .sum();
            assert!((q - direct).abs() < 1e-12 * direct.abs().max(1.0));
            let mut x = v.clone();
            cholesky_solve(&l, p, &mut x);
            for i in 0..p {
                let s: f64 = (0..p).map(|m| a[i * p + m] * x[m]).sum();
                assert!((s - v[i]).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn collinear_columns_are_refused() {
        // Second column is twice the first.
        let mut a = vec![1.0, 2.0, 2.0, 4.0];
        assert!(!cholesky(&mut a, 2));
        // A zero column.
        let mut z = vec![1.0, 0.0, 0.0, 0.0];
        assert!(!cholesky(&mut z, 2));
        // NaN never passes as a pivot.
        let mut n = vec![f64::NAN];
        assert!(!cholesky(&mut n, 1));
    }
}
