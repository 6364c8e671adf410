"""Independent references for factor bets, correlation clusters and sector coherence.

Nothing here imports factorcore. Each output is computed straight from its documented
definition, one date / window at a time:

* :func:`reference_factor_bets` -- per exposure date, the portfolio's factor exposures
  b = sum_i w_i beta_i (a Python loop over the exposure rows), the sample covariance
  (``np.cov``, ddof=1) of the factor-return window ending on that date, and the ENB formulas
  of ``diversification_reference`` (PCA bets, exact minimum torsion, diversification ratio)
  with "assets" = factors and "weights" = b.
* :func:`scipy_clusters` / :func:`reference_correlation_clusters` -- correlation distance
  sqrt((1 - rho) / 2), ``scipy.cluster.hierarchy.linkage`` on its condensed form and
  ``fcluster(..., criterion="maxclust")``, relabelled 1..k by first appearance.
* :func:`reference_sector_coherence` -- per window and sector: mean intra-sector and
  inter-sector correlation, and ``sklearn.metrics.adjusted_rand_score`` between the sector
  labels and the correlation clusters.

Run ``python tests/clusters_reference.py`` for the reference's own self-checks (among them a
naive Lance-Williams agglomeration that the scipy-based clustering must agree with).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
from diversification_reference import (
    diversification_ratio,
    enb_mt,
    enb_pca,
    parse_snapshots,
    portfolio_vol,
    snapshot_for,
    window_ends,
)
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

LINKAGES = ("single", "complete", "average", "ward")
BETS_SCORES = ("factor_vol", "enb_pca", "enb_mt", "diversification_ratio")
COHERENCE_COLUMNS = (
    "date",
    "sector",
    "n_assets",
    "intra_correlation",
    "inter_correlation",
    "adjusted_rand_index",
)
COHERENCE_FLOATS = COHERENCE_COLUMNS[3:]


# --------------------------------------------------------------------------------------------
# correlation, distance, clusters
# --------------------------------------------------------------------------------------------
def is_constant(x: np.ndarray) -> np.ndarray:
    """Per column: every value equal (exact comparison)."""
    return np.all(x == x[:1], axis=0)


def usable_columns(x: np.ndarray) -> np.ndarray:
    """Columns with no missing value and not constant: the assets that are clustered."""
    complete = ~np.isnan(x).any(axis=0)
    flat = np.zeros(x.shape[1], bool)
    flat[complete] = is_constant(x[:, complete])
    return complete & ~flat


def correlation(x: np.ndarray) -> np.ndarray:
    """Sample (Pearson) correlation of the columns of x (no NaN, no constant column),
    symmetrised (np.corrcoef divides by sigma_i and sigma_j in an order-dependent way)."""
    rho = np.atleast_2d(np.corrcoef(x, rowvar=False))
    return (rho + rho.T) / 2


def correlation_distance(x: np.ndarray) -> np.ndarray:
    """D_ij = sqrt((1 - rho_ij) / 2), exactly 0 on the diagonal."""
    d = np.sqrt(np.clip((1.0 - correlation(x)) / 2.0, 0.0, None))
    np.fill_diagonal(d, 0.0)
    return d


def canonical(labels) -> np.ndarray:
    """Relabel a partition 1..k in order of first appearance."""
    seen: dict = {}
    return np.array([seen.setdefault(v, len(seen) + 1) for v in labels], dtype=np.int64)


def scipy_clusters(x: np.ndarray, k: int, method: str = "average") -> np.ndarray:
    """Flat clusters (canonical labels) of the columns of x: scipy linkage + maxclust cut."""
    n = x.shape[1]
    if n == 1:
        return np.ones(1, dtype=np.int64)
    z = linkage(squareform(correlation_distance(x), checks=False), method=method)
    return canonical(fcluster(z, k, criterion="maxclust"))


def naive_agglomerative(dist: np.ndarray, k: int, method: str) -> np.ndarray:
    """Textbook O(n^3) agglomeration with the Lance-Williams updates, stopped at k clusters.

    Only for checking how the reference calls scipy (no ties in the data it is used on).
    """
    n = dist.shape[0]
    members = {i: [i] for i in range(n)}
    d = {(i, j): float(dist[i, j]) for i in range(n) for j in range(i + 1, n)}

    def get(a, b):
        return d[(a, b) if a < b else (b, a)]

    next_id = n
    while len(members) > k:
        (a, b), dab = min(d.items(), key=lambda kv: kv[1])
        na, nb = len(members[a]), len(members[b])
        new = {}
        for c in members:
            if c in (a, b):
                continue
            dac, dbc, nc = get(a, c), get(b, c), len(members[c])
            if method == "single":
                new[c] = min(dac, dbc)
            elif method == "complete":
                new[c] = max(dac, dbc)
            elif method == "average":
                new[c] = (na * dac + nb * dbc) / (na + nb)
            elif method == "ward":
                tot = na + nb + nc
                new[c] = math.sqrt(((na + nc) * dac**2 + (nb + nc) * dbc**2 - nc * dab**2) / tot)
            else:
                raise ValueError(method)
        d = {key: v for key, v in d.items() if a not in key and b not in key}
        for c, v in new.items():
            d[(c, next_id)] = v
        members[next_id] = members.pop(a) + members.pop(b)
        next_id += 1
    labels = np.empty(n, dtype=np.int64)
    for label, (_, idx) in enumerate(sorted(members.items(), key=lambda kv: min(kv[1]))):
        labels[idx] = label
    return canonical(labels)


def reference_correlation_clusters(returns, assets, n_clusters: int, method="average"):
    """The documented output of ``correlation_clusters``: (asset String, cluster UInt32)."""
    r = np.asarray(returns, float)
    keep = usable_columns(r)
    labels = scipy_clusters(r[:, keep], n_clusters, method)
    return pl.DataFrame(
        {
            "asset": pl.Series(
                [a for a, k in zip(assets, keep, strict=True) if k], dtype=pl.String
            ),
            "cluster": pl.Series(labels, dtype=pl.UInt32),
        }
    )


# --------------------------------------------------------------------------------------------
# sector coherence
# --------------------------------------------------------------------------------------------
def intra_inter(rho: np.ndarray, in_sector: np.ndarray) -> tuple[float, float]:
    """Mean rho over distinct pairs inside the sector; mean rho over (inside, outside) pairs."""
    inside = np.flatnonzero(in_sector)
    outside = np.flatnonzero(~in_sector)
    n = inside.size
    if n >= 2:
        block = rho[np.ix_(inside, inside)]
        intra = float(block[np.triu_indices(n, 1)].mean())
    else:
        intra = math.nan
    inter = float(rho[np.ix_(inside, outside)].mean()) if outside.size and n else math.nan
    return intra, inter


def coherence_window(x: np.ndarray, asset_sectors, n_clusters, method) -> list[tuple]:
    """(sector, n_assets, intra, inter, ari) rows of one window, sorted by sector name."""
    keep = usable_columns(x)
    xi = x[:, keep]
    secs = np.array([s for s, k in zip(asset_sectors, keep, strict=True) if k], dtype=object)
    m = secs.size
    if m == 0:
        return []
    rho = correlation(xi)
    distinct = sorted(set(secs.tolist()))
    k = len(distinct) if n_clusters is None else n_clusters
    k = min(k, m)
    labels = scipy_clusters(xi, k, method)
    ari = float(adjusted_rand_score(secs.tolist(), labels.tolist()))
    rows = []
    for s in distinct:
        mask = secs == s
        intra, inter = intra_inter(rho, mask)
        rows.append((s, int(mask.sum()), intra, inter, ari))
    return rows


def reference_sector_coherence(
    returns,
    dates: pl.Series,
    assets,
    sector_of: dict,
    *,
    n_clusters: int | None = None,
    linkage: str = "average",
    window: int | None = None,
    step: int = 1,
) -> pl.DataFrame:
    """The documented output of ``sector_coherence`` for a (T, N) returns array (NaN = missing)."""
    r = np.asarray(returns, float)
    asset_sectors = [sector_of[a] for a in assets]
    day_values = dates.to_list()
    out: dict[str, list] = {c: [] for c in COHERENCE_COLUMNS}
    for end in window_ends(r.shape[0], window, step):
        start = 0 if window is None else end - window + 1
        for row in coherence_window(r[start : end + 1], asset_sectors, n_clusters, linkage):
            out["date"].append(day_values[end])
            for name, value in zip(COHERENCE_COLUMNS[1:], row, strict=True):
                out[name].append(value)
    return pl.DataFrame(
        {
            "date": pl.Series(out["date"], dtype=dates.dtype),
            "sector": pl.Series(out["sector"], dtype=pl.String),
            "n_assets": pl.Series(out["n_assets"], dtype=pl.UInt32),
            **{c: pl.Series(out[c], dtype=pl.Float64) for c in COHERENCE_FLOATS},
        }
    )


# --------------------------------------------------------------------------------------------
# factor bets
# --------------------------------------------------------------------------------------------
def reference_factor_bets(
    exposures: pl.DataFrame,
    factor_frame: pl.DataFrame,
    weights=None,
    *,
    window: int,
) -> pl.DataFrame:
    """The documented output of ``factor_bets`` (columns: date, b_<factor>..., then
    excluded_weight and the four scores; tests select columns by name).

    weights: None (1/n over the assets with complete betas on each date), a mapping, or a
    snapshot frame (date, asset, weight) whose dates compare with the exposure dates.
    """
    factors = [c for c in factor_frame.columns if c != "date"]
    fdates = factor_frame["date"].to_list()
    position = {d: i for i, d in enumerate(fdates)}
    f = np.column_stack([factor_frame[c].cast(pl.Float64).to_numpy() for c in factors])
    f = np.where(np.isfinite(f), f, np.nan)
    snapshots = None
    if isinstance(weights, pl.DataFrame):
        assets = sorted(set(weights["asset"].cast(pl.String).to_list()))
        snapshots = [
            (day, dict(zip(assets, vec.tolist(), strict=True)))
            for day, vec in parse_snapshots(
                weights.with_columns(pl.col("asset").cast(pl.String)), assets
            )
        ]
    rows: list[dict] = []
    exp = exposures.with_columns(pl.col("asset").cast(pl.String))
    for day in sorted(set(exp["date"].to_list())):
        pos = position[day]
        if pos < window - 1:
            continue
        sub = exp.filter(pl.col("date") == day)
        names = sub["asset"].to_list()
        betas = np.column_stack([sub[c].cast(pl.Float64).to_numpy() for c in factors])
        valid = np.isfinite(betas).all(axis=1)
        if snapshots is not None:
            mapping = snapshot_for(day, snapshots)
            assert mapping is not None, "tests keep exposure dates after the first snapshot"
        else:
            mapping = weights
        b = np.zeros(len(factors))
        if mapping is None:
            n_valid = int(valid.sum())
            for i in np.flatnonzero(valid):
                b += betas[i] / n_valid
            excluded = 0.0
        else:
            beta_of = {a: betas[i] for i, a in enumerate(names) if valid[i]}
            total = sum(abs(w) for w in mapping.values())
            left_out = 0.0
            for a, w in mapping.items():
                if a in beta_of:
                    b += w * beta_of[a]
                else:
                    left_out += abs(w)
            excluded = left_out / total
        x = f[pos - window + 1 : pos + 1]
        keep = ~np.isnan(x).any(axis=0)
        s = np.atleast_2d(np.cov(x[:, keep], rowvar=False, ddof=1))
        bk = b[keep]
        row = {"date": day, "excluded_weight": excluded}
        row.update({f"b_{name}": float(v) for name, v in zip(factors, b, strict=True)})
        row["factor_vol"] = portfolio_vol(bk, s)
        row["enb_pca"] = enb_pca(bk, s)
        row["enb_mt"] = enb_mt(bk, s)
        row["diversification_ratio"] = diversification_ratio(bk, s)
        rows.append(row)
    cols = [pl.Series("date", [r["date"] for r in rows], dtype=factor_frame.schema["date"])]
    for name in [f"b_{c}" for c in factors] + ["excluded_weight", *BETS_SCORES]:
        cols.append(pl.Series(name, [r[name] for r in rows], dtype=pl.Float64))
    return pl.DataFrame(cols)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def business_days(n: int, start: dt.date = dt.date(2021, 1, 4)) -> list[dt.date]:
    """``n`` weekdays from a Monday."""
    return [start + dt.timedelta(days=7 * (i // 5) + i % 5) for i in range(n)]


def sector_returns(
    rng,
    n_rows: int,
    sizes,
    *,
    market_vol: float = 0.01,
    sector_vol: float = 0.012,
    idio_vol: float = 0.006,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns driven by a market factor plus one factor per sector; (returns, sector index).

    Assets are interleaved (sector 0, 1, 2, 0, 1, 2, ...) so that blocks are not contiguous.
    """
    sizes = list(sizes)
    labels = np.concatenate([np.full(s, g) for g, s in enumerate(sizes)])
    order = np.argsort(np.arange(labels.size) % max(sizes) * len(sizes) + labels, kind="stable")
    labels = labels[order]
    market = rng.standard_normal(n_rows) * market_vol
    sector = rng.standard_normal((n_rows, len(sizes))) * sector_vol
    beta = rng.uniform(0.6, 1.4, labels.size)
    load = rng.uniform(0.8, 1.2, labels.size)
    idio = (
        rng.standard_normal((n_rows, labels.size)) * idio_vol * rng.uniform(0.7, 1.5, labels.size)
    )
    r = 0.0003 + market[:, None] * beta + sector[:, labels] * load + idio
    return r, labels


FACTOR_VOLS = (0.011, 0.006, 0.004, 0.005)
FACTOR_CORR = np.array(
    [
        [1.0, 0.3, -0.2, 0.1],
        [0.3, 1.0, 0.15, -0.1],
        [-0.2, 0.15, 1.0, 0.25],
        [0.1, -0.1, 0.25, 1.0],
    ]
)


def factor_model(rng, n_rows: int, n_assets: int, n_factors: int = 3):
    """(factor returns (T, K), asset returns (T, N)): correlated factors of distinct vols and
    slowly drifting betas, so that rolling exposures change from date to date."""
    chol = np.linalg.cholesky(FACTOR_CORR[:n_factors, :n_factors])
    f = rng.standard_normal((n_rows, n_factors)) @ chol.T * np.array(FACTOR_VOLS[:n_factors])
    beta0 = rng.uniform(-0.4, 1.4, (n_assets, n_factors))
    phase = rng.uniform(0, 2 * math.pi, (n_assets, n_factors))
    t = np.arange(n_rows)[:, None, None] / n_rows
    beta = beta0 + 0.4 * np.sin(2 * math.pi * t + phase)
    idio = rng.uniform(0.004, 0.015, n_assets)
    r = 0.0002 + np.einsum("tk,tnk->tn", f, beta) + rng.standard_normal((n_rows, n_assets)) * idio
    return f, r


# --------------------------------------------------------------------------------------------
# self-checks of the reference
# --------------------------------------------------------------------------------------------
def _ari_by_hand(a, b) -> float:
    """Hubert & Arabie's ARI from the contingency table."""
    _, ia = np.unique(np.asarray(a, dtype=str), return_inverse=True)
    _, ib = np.unique(np.asarray(b, dtype=str), return_inverse=True)
    table = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(table, (ia, ib), 1)

    def comb2(v):
        return np.sum(v * (v - 1) / 2)

    n = len(ia)
    index, rows, cols = comb2(table), comb2(table.sum(1)), comb2(table.sum(0))
    expected = rows * cols / (n * (n - 1) / 2)
    top = (rows + cols) / 2
    return float((index - expected) / (top - expected))


def self_check() -> None:
    rng = np.random.default_rng(20240701)

    # canonical labels
    assert canonical([3, 3, 1, 2, 1]).tolist() == [1, 1, 2, 3, 2]
    assert canonical(["b", "a", "b"]).tolist() == [1, 2, 1]

    # correlation and distance from their definitions
    x = rng.standard_normal((40, 6)) * rng.uniform(0.5, 3.0, 6) + rng.uniform(-1, 1, 6)
    xc = x - x.mean(axis=0)
    rho = (xc.T @ xc) / np.sqrt(np.outer((xc**2).sum(0), (xc**2).sum(0)))
    assert np.allclose(correlation(x), rho, rtol=0, atol=1e-14)
    d = correlation_distance(x)
    off = ~np.eye(6, dtype=bool)
    assert np.allclose(d[off], np.sqrt((1 - rho[off]) / 2), rtol=1e-12, atol=0)
    assert np.all(np.diag(d) == 0) and np.array_equal(d, d.T)

    # scipy + maxclust = the textbook agglomeration stopped at k clusters (random data, no ties)
    for n, n_rows in ((5, 30), (9, 50), (14, 80)):
        x = rng.standard_normal((n_rows, n)) + 0.4 * rng.standard_normal((n_rows, 1))
        for method in LINKAGES:
            for k in range(1, n + 1):
                got = scipy_clusters(x, k, method)
                assert got.max() == k, (method, k, got)
                exp = naive_agglomerative(correlation_distance(x), k, method)
                assert np.array_equal(got, exp), (method, n, k, got, exp)

    # planted sectors are recovered exactly by every linkage; scaling changes nothing
    r, labels = sector_returns(rng, 250, [4, 3, 5])
    for method in LINKAGES:
        got = scipy_clusters(r, 3, method)
        assert np.array_equal(got, canonical(labels)), method
        assert np.array_equal(scipy_clusters(r * 9.1, 3, method), got)

    # ARI: sklearn against the contingency-table formula
    for _ in range(20):
        a = rng.integers(0, 4, 25)
        b = rng.integers(0, 3, 25)
        assert abs(adjusted_rand_score(a, b) - _ari_by_hand(a, b)) < 1e-12
    assert adjusted_rand_score(["x"], [1]) == 1.0

    # intra / inter: the vectorised means against explicit double loops
    x = rng.standard_normal((60, 8)) + rng.standard_normal((60, 1))
    rho = correlation(x)
    for mask in (
        np.array([1, 1, 0, 0, 1, 0, 0, 0], bool),
        np.array([0, 0, 0, 0, 0, 0, 0, 1], bool),
    ):
        intra, inter = intra_inter(rho, mask)
        pairs = [rho[i, j] for i in range(8) for j in range(i + 1, 8) if mask[i] and mask[j]]
        cross = [rho[i, j] for i in range(8) for j in range(8) if mask[i] and not mask[j]]
        assert (math.isnan(intra) and not pairs) or abs(intra - np.mean(pairs)) < 1e-15
        assert abs(inter - np.mean(cross)) < 1e-15
    assert all(math.isnan(v) for v in intra_inter(rho, np.ones(8, bool))[1:])

    # membership: a late asset and a constant asset are left out
    x = rng.standard_normal((30, 4))
    x[:10, 1] = np.nan
    x[:, 3] = 0.5
    assert usable_columns(x).tolist() == [True, False, True, False]
    assert usable_columns(x[10:]).tolist() == [True, True, True, False]

    # sector coherence: rows and windows
    r, labels = sector_returns(rng, 120, [3, 3, 2])
    assets = [f"S{i}" for i in range(labels.size)]
    sector_of = {a: f"sec{g}" for a, g in zip(assets, labels, strict=True)}
    dates = pl.Series("date", business_days(120), dtype=pl.Date)
    full = reference_sector_coherence(r, dates, assets, sector_of)
    assert full["sector"].to_list() == ["sec0", "sec1", "sec2"]
    assert (full["adjusted_rand_index"] == 1.0).all()
    assert (full["intra_correlation"] > full["inter_correlation"] + 0.2).all()
    rolling = reference_sector_coherence(r, dates, assets, sector_of, window=40, step=20)
    assert rolling.height == 3 * len(window_ends(120, 40, 20))

    # factor bets: b = w' beta, one factor -> ENB 1, DR 1, factor_vol = |b| sigma
    days = business_days(50)
    f = rng.standard_normal((50, 1)) * 0.01
    ff = pl.DataFrame({"date": pl.Series(days, dtype=pl.Date), "mkt": f[:, 0]})
    expo = pl.DataFrame(
        {
            "date": pl.Series([days[i] for i in range(20, 50) for _ in range(2)], dtype=pl.Date),
            "asset": ["A", "B"] * 30,
            "mkt": rng.uniform(0.5, 1.5, 60),
        }
    )
    out = reference_factor_bets(expo, ff, {"A": 2.0, "B": -0.5}, window=25)
    assert out.height == 30 - 4  # dates at rows 20..23 have no full window
    beta = expo["mkt"].to_numpy().reshape(30, 2)[4:]
    assert np.allclose(out["b_mkt"].to_numpy(), 2.0 * beta[:, 0] - 0.5 * beta[:, 1], rtol=1e-14)
    sig = np.array([np.std(f[i - 24 : i + 1, 0], ddof=1) for i in range(24, 50)])
    assert np.allclose(out["factor_vol"].to_numpy(), np.abs(out["b_mkt"].to_numpy()) * sig)
    for name in ("enb_pca", "enb_mt", "diversification_ratio"):
        assert np.allclose(out[name].to_numpy(), 1.0, rtol=1e-12, atol=0), name
    eq = reference_factor_bets(expo, ff, None, window=25)
    assert np.allclose(eq["b_mkt"].to_numpy(), beta.mean(axis=1), rtol=1e-14)
    print("clusters_reference: all self-checks passed")


if __name__ == "__main__":
    self_check()
