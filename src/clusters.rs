//! Do sector labels still describe how assets move? Hierarchical clusters of assets on
//! correlation distance, agreement with the labels (adjusted Rand index), and mean
//! correlations within and across sectors.

use faer::{MatRef, Par};
use kodama::Method;
use rayon::prelude::*;

use crate::diversification::{check_columns, check_ends, correlation_of, Window};
use crate::error::{invalid, Result};
use crate::interrupt::Interrupt;

/// How the distance between two clusters follows from the distances of their members
/// (as SciPy's `linkage` methods of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    Single,
    Complete,
    Average,
    Ward,
}

impl Linkage {
    fn method(self) -> Method {
        match self {
            Linkage::Single => Method::Single,
            Linkage::Complete => Method::Complete,
            Linkage::Average => Method::Average,
            Linkage::Ward => Method::Ward,
        }
    }
}

/// Flat clusters (labels 0..k, numbered by first appearance) of the assets whose
/// correlation matrix is `corr`, on the distance `sqrt((1 - rho) / 2)`, cut into
/// `k` clusters (SciPy's `fcluster(..., criterion="maxclust")` for monotone linkages).
pub fn cluster_correlations(corr: MatRef<'_, f64>, k: usize, linkage: Linkage) -> Vec<u32> {
    let n = corr.nrows();
    if n == 0 {
        return Vec::new();
    }
    let mut condensed = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let rho = corr[(i.max(j), i.min(j))];
            condensed.push(((1.0 - rho) / 2.0).max(0.0).sqrt());
        }
    }
    let dendrogram = kodama::linkage(&mut condensed, n, linkage.method());
    // Undo the last k - 1 merges: apply the first n - k with a union-find.
    let mut parent: Vec<usize> = (0..2 * n).collect();
    fn root(parent: &mut [usize], mut x: usize) -> usize {
        while parent[x] != x {
            parent[x] = parent[parent[x]];
            x = parent[x];
        }
        x
    }
    for (step_index, step) in dendrogram
        .steps()
        .iter()
        .take(n - k.clamp(1, n))
        .enumerate()
    {
        let merged = n + step_index;
        let (a, b) = (
            root(&mut parent, step.cluster1),
            root(&mut parent, step.cluster2),
        );
        parent[a] = merged;
        parent[b] = merged;
    }
    let mut label_of_root = vec![u32::MAX; 2 * n];
    let mut next = 0;
    (0..n)
        .map(|i| {
            let r = root(&mut parent, i);
            if label_of_root[r] == u32::MAX {
                label_of_root[r] = next;
                next += 1;
            }
            label_of_root[r]
        })
        .collect()
}

/// Flat clusters of the assets over all rows of `columns`: the assets with a return on
/// every row and non-zero volatility (their column indices) and their cluster labels.
/// `interrupt` is looked at between the correlations and the clustering.
pub fn correlation_clusters(
    columns: &[&[f64]],
    n_rows: usize,
    k: usize,
    linkage: Linkage,
    interrupt: &Interrupt,
) -> Result<(Vec<usize>, Vec<u32>)> {
    check_columns(columns, n_rows)?;
    check_ends(n_rows, n_rows, &[n_rows.saturating_sub(1)])?;
    let window = Window::gather(columns, 0..n_rows);
    let moving: Vec<usize> = (0..window.assets.len())
        .filter(|&k| window.sumsq[k] > 0.0)
        .collect();
    if k == 0 || k > moving.len() {
        return Err(invalid(format!(
            "n_clusters must be between 1 and the {} assets with complete, non-constant returns, got {k}",
            moving.len()
        )));
    }
    let cross = window.cross(false, Par::rayon(0));
    let corr = correlation_of(cross.as_ref(), &moving, &window.sumsq);
    interrupt.check()?;
    let assets = moving.iter().map(|&k| window.assets[k]).collect();
    Ok((assets, cluster_correlations(corr.as_ref(), k, linkage)))
}

/// Adjusted Rand index of two labellings (Hubert & Arabie 1985); 1 when they describe
/// the same partition, about 0 for unrelated ones.
pub fn adjusted_rand_index(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len();
    let (ka, kb) = (
        a.iter().max().map_or(0, |&x| x as usize + 1),
        b.iter().max().map_or(0, |&x| x as usize + 1),
    );
    let mut table = vec![0u64; ka * kb];
    for (&x, &y) in a.iter().zip(b) {
        table[x as usize * kb + y as usize] += 1;
    }
    let pairs = |c: u64| (c * c.saturating_sub(1) / 2) as f64;
    let index: f64 = table.iter().map(|&c| pairs(c)).sum();
    let rows: f64 = (0..ka)
        .map(|i| pairs(table[i * kb..(i + 1) * kb].iter().sum()))
        .sum();
    let cols: f64 = (0..kb)
        .map(|j| pairs((0..ka).map(|i| table[i * kb + j]).sum()))
        .sum();
    let total = pairs(n as u64);
    let expected = if total > 0.0 {
        rows * cols / total
    } else {
        0.0
    };
    let max_index = (rows + cols) / 2.0;
    if max_index == expected {
        // Both labellings are trivial (one cluster each, or all singletons): identical.
        return 1.0;
    }
    (index - expected) / (max_index - expected)
}

/// Per window and sector: included assets, mean correlation within the sector and with
/// the other sectors, and the window's adjusted Rand index between sectors and clusters.
#[derive(Debug, Clone, Default)]
pub struct Coherence {
    /// Window index of each row (rows are per window, then per sector code).
    pub window: Vec<usize>,
    pub sector: Vec<u32>,
    pub n_assets: Vec<u32>,
    pub intra_correlation: Vec<f64>,
    pub inter_correlation: Vec<f64>,
    pub adjusted_rand_index: Vec<f64>,
}

/// `sectors[j]` is the sector code (< `n_sectors`) of column j. `n_clusters = None`
/// cuts each window into as many clusters as it has sectors. Once `interrupt` is set
/// the call stops at the next window with [`crate::Error::Interrupted`].
#[allow(clippy::too_many_arguments)]
pub fn sector_coherence(
    columns: &[&[f64]],
    n_rows: usize,
    ends: &[usize],
    width: usize,
    sectors: &[u32],
    n_clusters: Option<usize>,
    linkage: Linkage,
    interrupt: &Interrupt,
) -> Result<Coherence> {
    check_columns(columns, n_rows)?;
    check_ends(n_rows, width, ends)?;
    if sectors.len() != columns.len() {
        return Err(invalid(format!(
            "{} sector labels for {} assets",
            sectors.len(),
            columns.len()
        )));
    }
    let n_sectors = sectors.iter().max().map_or(0, |&s| s as usize + 1);
    let par = if ends.len() == 1 {
        Par::rayon(0)
    } else {
        Par::Seq
    };
    let per_window: Vec<Coherence> = ends
        .par_iter()
        .enumerate()
        .map(|(index, &end)| {
            interrupt.check()?;
            let window = Window::gather(columns, end + 1 - width..end + 1);
            let moving: Vec<usize> = (0..window.assets.len())
                .filter(|&k| window.sumsq[k] > 0.0)
                .collect();
            let labels: Vec<u32> = moving.iter().map(|&k| sectors[window.assets[k]]).collect();
            let cross = window.cross(false, par);
            let corr = correlation_of(cross.as_ref(), &moving, &window.sumsq);
            Ok(coherence_of(
                corr.as_ref(),
                &labels,
                n_sectors,
                n_clusters,
                linkage,
                index,
            ))
        })
        .collect::<Result<_>>()?;
    let mut out = Coherence::default();
    for part in per_window {
        out.window.extend(part.window);
        out.sector.extend(part.sector);
        out.n_assets.extend(part.n_assets);
        out.intra_correlation.extend(part.intra_correlation);
        out.inter_correlation.extend(part.inter_correlation);
        out.adjusted_rand_index.extend(part.adjusted_rand_index);
    }
    Ok(out)
}

fn coherence_of(
    corr: MatRef<'_, f64>,
    labels: &[u32],
    n_sectors: usize,
    n_clusters: Option<usize>,
    linkage: Linkage,
    window: usize,
) -> Coherence {
    let m = labels.len();
    // Sums and counts of correlations over pairs of distinct assets: within the
    // sector, and from the sector to the others.
    let mut count = vec![0u32; n_sectors];
    let (mut intra, mut intra_pairs) = (vec![0.0; n_sectors], vec![0u64; n_sectors]);
    let mut across = vec![0.0; n_sectors];
    for &s in labels {
        count[s as usize] += 1;
    }
    for i in 0..m {
        for j in 0..i {
            let rho = corr[(i, j)];
            let (si, sj) = (labels[i] as usize, labels[j] as usize);
            if si == sj {
                intra[si] += rho;
                intra_pairs[si] += 1;
            } else {
                across[si] += rho;
                across[sj] += rho;
            }
        }
    }
    let present = count.iter().filter(|&&c| c > 0).count();
    let ari = if m == 0 {
        f64::NAN
    } else {
        let k = n_clusters.unwrap_or(present).min(m);
        let clusters = cluster_correlations(corr, k, linkage);
        adjusted_rand_index(labels, &clusters)
    };
    let mut out = Coherence::default();
    for s in 0..n_sectors {
        if count[s] == 0 {
            continue;
        }
        let outside = (m as u64 - count[s] as u64) * count[s] as u64;
        out.window.push(window);
        out.sector.push(s as u32);
        out.n_assets.push(count[s]);
        out.intra_correlation.push(if intra_pairs[s] > 0 {
            intra[s] / intra_pairs[s] as f64
        } else {
            f64::NAN
        });
        out.inter_correlation.push(if outside > 0 {
            across[s] / outside as f64
        } else {
            f64::NAN
        });
        out.adjusted_rand_index.push(ari);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// Found by fuzz/: columns with no rows overflowed `n_rows - 1` (a panic in debug builds).
    #[test]
    fn clusters_of_no_rows_are_refused() {
        let empty: [&[f64]; 2] = [&[], &[]];
        assert!(correlation_clusters(&empty, 0, 1, Linkage::Average, &Interrupt::new()).is_err());
    }

    #[test]
    fn rand_index_of_known_partitions() {
        assert_eq!(adjusted_rand_index(&[0, 0, 1, 1], &[1, 1, 0, 0]), 1.0);
        // sklearn.metrics.adjusted_rand_score([0, 0, 1, 1], [0, 0, 1, 2]) = 0.5714285714285714
        let ari = adjusted_rand_index(&[0, 0, 1, 1], &[0, 0, 1, 2]);
        assert!((ari - 0.5714285714285714).abs() < 1e-15);
        // adjusted_rand_score([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]) = -0.36363636363636365
        let ari = adjusted_rand_index(&[0, 0, 0, 1, 1, 1], &[0, 1, 2, 0, 1, 2]);
        assert!((ari + 0.36363636363636365).abs() < 1e-15);
    }

    #[test]
    fn blocks_of_correlated_assets_are_found() {
        let blocks = [0u32, 0, 1, 1, 1, 2, 2];
        let corr = Mat::from_fn(7, 7, |i, j| {
            if i == j {
                1.0
            } else if blocks[i] == blocks[j] {
                0.8 - 0.01 * (i + j) as f64
            } else {
                0.1 + 0.01 * (i * j % 3) as f64
            }
        });
        for linkage in [
            Linkage::Single,
            Linkage::Complete,
            Linkage::Average,
            Linkage::Ward,
        ] {
            let clusters = cluster_correlations(corr.as_ref(), 3, linkage);
            assert_eq!(clusters, vec![0, 0, 1, 1, 1, 2, 2], "{linkage:?}");
        }
        let one = cluster_correlations(corr.as_ref(), 1, Linkage::Average);
        assert!(one.iter().all(|&c| c == 0));
    }

    #[test]
    fn a_set_interrupt_stops_sector_coherence_with_an_error() {
        let columns: Vec<Vec<f64>> = (0..6)
            .map(|j| (0..30).map(|t| ((t * (j + 2)) % 7) as f64 * 0.01).collect())
            .collect();
        let slices: Vec<&[f64]> = columns.iter().map(|c| c.as_slice()).collect();
        let sectors = [0, 0, 1, 1, 2, 2];
        let ends: Vec<usize> = (9..30).collect();
        let run = |stop: &Interrupt| {
            sector_coherence(
                &slices,
                30,
                &ends,
                10,
                &sectors,
                None,
                Linkage::Average,
                stop,
            )
        };
        assert!(run(&Interrupt::new()).is_ok());
        let stop = Interrupt::new();
        stop.set();
        assert_eq!(run(&stop).err(), Some(crate::Error::Interrupted));
        let clusters = correlation_clusters(&slices, 30, 2, Linkage::Average, &stop);
        assert_eq!(clusters.err(), Some(crate::Error::Interrupted));
    }
}
