"""pytest-benchmark comparisons: diversification scores, risk contributions, factor bets,
correlation clusters and sector coherence against NumPy / SciPy / scikit-learn / skfolio.

Groups (quick sizes; ``FACTORCORE_BENCH=full`` sizes in brackets), factorcore first, then
its peers, all on the same seeded inputs:

9.  ``diversification all measures N=100 T=1260 W=252 step=63``
    [N=250 T=2520 W=504 step=21]: ``fc.diversification(frame, weights, window=W, step=S)``
    vs the NumPy per-window loop of ``bench_diversification`` (``run_peer``: np.cov, eigh,
    eigvalsh, exact minimum torsion with the *published* stopping rule), on all windows.
10. ``diversification no enb_mt N=800 T=1260 W=252 step=63``
    [N=3000 T=2520 W=252 step=21]: the same call (enb_mt is NaN: W <= N) vs the NumPy loop
    without the torsion (np.cov + N x N eigh + eigvalsh per window) on 3 evenly spaced
    windows, scale = windows / 3.
11. ``diversification full sample N=100 T=1260`` [N=250 T=2520] (the data of group 9):
    ``fc.diversification(frame, weights)`` (one window, every score) vs skfolio
    ``Portfolio(X, weights).diversification`` + ``effective_number_assets(weights)``, the
    two scores whose definitions coincide for long-only weights summing to 1. factorcore
    also computes the PCA and minimum-torsion bets and the correlation measures, skfolio
    does not: the ratio understates factorcore's speed.
12. ``risk_contributions N=200 T=1260`` [N=1000 T=2520]: vs NumPy (np.cov, w'Sw, Sw / sigma).
13. ``factor_bets N=200 T=1260 K=5 W=252`` [N=1000 T=2520]: vs a NumPy loop over the dates
    on its definition (b = B'w, np.cov of the factor window, factor vol, and DR, PCA bets and
    minimum-torsion bets by ``bench_diversification.peer_window``, torsion iterated to
    convergence as factorcore does).
14. ``correlation_clusters N=200 T=1260 k=11`` [N=1000 T=2520]: vs SciPy average
    ``linkage`` + ``fcluster(maxclust)`` on sqrt((1 - corr) / 2); same partition (sklearn
    adjusted_rand_score == 1).
15. ``sector_coherence N=200 T=1260 W=252 step=63 sectors=11`` [N=1000 T=2520]: vs a NumPy /
    SciPy / scikit-learn loop over the windows (np.corrcoef, intra/inter-sector means,
    linkage + fcluster, adjusted_rand_score).

Data: ``bench_exposures.make_returns`` (5-factor model, seeded) as a wide Polars frame
(``bench_diversification.make_data``); for 12-15 plus one sector factor per asset (11
sectors, assets assigned round-robin) so that clusters and sectors mean something, and, for
13, synthetic exposures (betas drifting slowly over the dates) in the long layout of
``fc.rolling_exposures`` on the dates with a full window. Weights: seeded long-only weights
summing to 1, as a mapping ``{asset: weight}`` for factorcore and a vector for the peers.
The peers get the returns as NumPy arrays built once (the conversion is not timed).

Every peer's answer is checked against factorcore's (on its sample of windows, where it
runs on a sample) before it is timed: rtol 1e-9 (1e-8 for the N x N eigh peer of group 10,
1e-10 for skfolio), except enb_mt of the published-rule peer (1e-3: that rule stops before
convergence, see ``RTOL_PUBLISHED_MT``). Peers that take seconds per call at the full sizes
(groups 9, 10, 13, 15) run one round there; at the quick sizes pytest-benchmark calibrates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bench_diversification as bd
import bench_exposures as bx
import factorcore as fc
import numpy as np
import polars as pl
import pytest
from conftest import measure, size
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

K_FACTORS = bd.K_FACTORS
N_SECTORS = 11
SECTOR_VOL = 0.006  # daily vol of each sector factor (idiosyncratic vol is 0.8%)
RTOL = 1e-9  # factorcore vs the NumPy peers (bench_diversification.RTOL_ALL)
RTOL_WIDE = bd.RTOL_WIDE  # ... and the N x N eigh peer of group 10 (1e-8)
RTOL_SKFOLIO = 1e-10  # closed forms on the same covariance
# The published stopping rule (|f_i - f_i-1| / f_i / n <= 1e-8) stops a few iterations before
# convergence (4 iterations here): its enb_mt is up to ~1e-4 relative off the converged value
# factorcore returns (measured 7e-5 quick, 9e-5 full); the other five measures do not depend
# on the torsion and are checked to RTOL.
RTOL_PUBLISHED_MT = 1e-3
MT = bd.COLUMNS.index("enb_mt")
NO_MT = [j for j, col in enumerate(bd.COLUMNS) if col != "enb_mt"]
SAMPLE_WINDOWS = 3  # windows the group-10 peer runs on
SLOW_ROUNDS = size(None, 1)  # peers that take seconds per call at the full sizes

# group 9 and 11: all measures (with the minimum-torsion bets)
T_ALL, N_ALL, W_ALL, S_ALL = size((1260, 100, 252, 63), (2520, 250, 504, 21))
# group 10: wide universe, W <= N
T_WIDE, N_WIDE, W_WIDE, S_WIDE = size((1260, 800, 252, 63), (2520, 3000, 252, 21))
# groups 12-15
T_MKT, N_MKT = size((1260, 200), (2520, 1000))
W_MKT, S_MKT = 252, 63

G_ALL = f"diversification all measures N={N_ALL} T={T_ALL} W={W_ALL} step={S_ALL}"
G_WIDE = f"diversification no enb_mt N={N_WIDE} T={T_WIDE} W={W_WIDE} step={S_WIDE}"
G_FULL = f"diversification full sample N={N_ALL} T={T_ALL}"
G_RISK = f"risk_contributions N={N_MKT} T={T_MKT}"
G_BETS = f"factor_bets N={N_MKT} T={T_MKT} K={K_FACTORS} W={W_MKT}"
G_CLUSTERS = f"correlation_clusters N={N_MKT} T={T_MKT} k={N_SECTORS}"
G_COHERENCE = f"sector_coherence N={N_MKT} T={T_MKT} W={W_MKT} step={S_MKT} sectors={N_SECTORS}"


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Returns:
    """Seeded returns as a (T, N) array and as a wide frame, and long-only weights."""

    y: np.ndarray
    frame: pl.DataFrame
    w: np.ndarray  # in column order, summing to 1
    weights: dict[str, float]


@dataclass(frozen=True)
class Market:
    """Returns with sector structure, their factor returns, sectors and factor exposures."""

    returns: Returns
    factor_frame: pl.DataFrame  # date + one column per factor
    f: np.ndarray  # (T, K) factor returns
    sectors: pl.DataFrame  # asset, sector
    codes: np.ndarray  # sector index of each asset, in column order
    exposures: pl.DataFrame  # long: date, asset, one column per factor
    betas: np.ndarray  # (dates, N, K): the exposures as an array
    rows: np.ndarray  # row of factor returns of each exposure date


def array_of(frame: pl.DataFrame) -> np.ndarray:
    """The peers start from the same Polars frame as factorcore: its asset columns as an array."""
    return frame.drop("date").to_numpy()


def long_only_weights(assets: list[str]) -> tuple[np.ndarray, dict[str, float]]:
    rng = np.random.default_rng(bd.SEED + 7)
    w = rng.uniform(0.5, 1.5, len(assets))
    w /= w.sum()
    return w, dict(zip(assets, w.tolist(), strict=True))


def returns_of(y: np.ndarray, frame: pl.DataFrame) -> Returns:
    w, weights = long_only_weights(frame.columns[1:])
    return Returns(y, frame, w, weights)


def model_returns(T: int, N: int, window: int) -> Returns:
    """bench_diversification's data: 5-factor model returns, no missing values."""
    return returns_of(*bd.make_data(bd.Workload(T, N, window)))


def drifting_betas(n_dates: int, N: int, K: int, seed: int) -> np.ndarray:
    """(dates, N, K) betas ~ N(0.5, 0.5) that drift by up to +-0.3 over the dates."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.5, 0.5, (N, K))
    phase = rng.uniform(0.0, 2 * math.pi, (N, K))
    t = np.arange(n_dates)[:, None, None] / n_dates
    return base + 0.3 * np.sin(2 * math.pi * t + phase)


def market_data(T: int, N: int, window: int) -> Market:
    y, f = bx.make_returns(T, N, K_FACTORS, seed=bd.SEED)
    rng = np.random.default_rng(bd.SEED + 1)
    codes = np.arange(N) % N_SECTORS
    y += rng.normal(0.0, SECTOR_VOL, (T, N_SECTORS))[:, codes]
    frame = pl.from_numpy(y, schema=bx.asset_names(N)).insert_column(0, bx.dates(T))
    returns = returns_of(y, frame)
    assets = returns.frame.columns[1:]
    days = returns.frame.get_column("date")
    factors = bx.factor_names(K_FACTORS)
    factor_frame = pl.from_numpy(f, schema=factors).insert_column(0, days)
    sectors = pl.DataFrame(
        {"asset": assets, "sector": [f"S{c:02d}" for c in codes]},
        schema={"asset": pl.String, "sector": pl.String},
    )
    rows = np.arange(window - 1, T)  # dates with a full window, as from rolling_exposures
    betas = drifting_betas(len(rows), N, K_FACTORS, bd.SEED + 2)
    flat = betas.reshape(-1, K_FACTORS)
    exposures = pl.DataFrame(
        {
            "date": days.gather(np.repeat(rows, N)),
            "asset": pl.Series(np.tile(np.array(assets), len(rows)), dtype=pl.String),
            **{name: flat[:, k] for k, name in enumerate(factors)},
        }
    )
    return Market(returns, factor_frame, f, sectors, codes, exposures, betas, rows)


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def assert_columns(
    got: np.ndarray, want: np.ndarray, names: list[str], rtol: float, what: str
) -> None:
    """Column by column: relative difference <= rtol, with an absolute floor of rtol times
    the column's largest magnitude (for values that cross zero); NaN where factorcore's is."""
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    for j, name in enumerate(names):
        scale = np.nanmax(np.abs(want[:, j])) if np.isfinite(want[:, j]).any() else 0.0
        np.testing.assert_allclose(
            got[:, j], want[:, j], rtol=rtol, atol=rtol * scale, err_msg=f"{what}: {name}"
        )


def frame_columns(out: pl.DataFrame, names: list[str]) -> np.ndarray:
    return np.column_stack([out.get_column(n).cast(pl.Float64).to_numpy() for n in names])


# --------------------------------------------------------------------------------------------
# Peers (besides bench_diversification.run_peer)
# --------------------------------------------------------------------------------------------


def skfolio_scores(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """[diversification ratio, effective number of assets] by skfolio."""
    from skfolio import Portfolio
    from skfolio.measures import effective_number_assets

    return np.array([Portfolio(X=y, weights=w).diversification, effective_number_assets(w)])


def numpy_risk_contributions(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(N, 4): volatility, marginal (S w / sigma_p), component (w * marginal), percent."""
    S = np.cov(y, rowvar=False)
    Sw = S @ w
    vol = math.sqrt(float(w @ Sw))
    marginal = Sw / vol
    component = w * marginal
    return np.column_stack([np.sqrt(np.diag(S)), marginal, component, component / vol])


def numpy_factor_bets(
    betas: np.ndarray, f: np.ndarray, rows: np.ndarray, w: np.ndarray, window: int
) -> np.ndarray:
    """Per exposure date: b = sum_i w_i beta_i, factor_vol = sqrt(b' S_f b), and DR, enb_pca,
    enb_mt of the factor window with b as weights (minimum torsion iterated to convergence)."""
    out = np.empty((len(rows), betas.shape[2] + 4))
    for i, row in enumerate(rows):
        b = w @ betas[i]
        X = f[row - window + 1 : row + 1]
        vol = math.sqrt(float(b @ np.cov(X, rowvar=False) @ b))
        scores, _ = bd.peer_window(X, b, "converged")
        out[i, :-4] = b
        out[i, -4:] = vol, scores[0], scores[2], scores[MT]
    return out


def correlation_distance(X: np.ndarray) -> np.ndarray:
    """Condensed sqrt((1 - rho) / 2) of the columns of X."""
    rho = np.corrcoef(X, rowvar=False)
    dist = np.sqrt(np.clip((1.0 - rho) / 2.0, 0.0, None))
    np.fill_diagonal(dist, 0.0)
    return squareform(dist, checks=False)


def scipy_clusters(X: np.ndarray, k: int) -> np.ndarray:
    return fcluster(linkage(correlation_distance(X), method="average"), k, criterion="maxclust")


def numpy_sector_coherence(
    y: np.ndarray, codes: np.ndarray, ends: np.ndarray, window: int
) -> np.ndarray:
    """(windows * sectors, 4) rows by window then sector: n_assets, intra-sector mean
    correlation, inter-sector mean correlation, ARI of sectors vs correlation clusters."""
    from sklearn.metrics import adjusted_rand_score

    n_sectors = int(codes.max()) + 1
    masks = [codes == s for s in range(n_sectors)]
    out = np.empty((len(ends) * n_sectors, 4))
    for i, end in enumerate(ends):
        X = y[end - window + 1 : end + 1]
        rho = np.corrcoef(X, rowvar=False)
        labels = scipy_clusters(X, n_sectors)
        ari = adjusted_rand_score(codes, labels)
        for s, inside in enumerate(masks):
            block = rho[np.ix_(inside, inside)]
            n = block.shape[0]
            intra = block[np.triu_indices(n, 1)].mean()
            inter = rho[np.ix_(inside, ~inside)].mean()
            out[i * n_sectors + s] = n, intra, inter, ari
    return out


# --------------------------------------------------------------------------------------------
# Fixtures: inputs and factorcore's answers, built once
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def all_data() -> Returns:
    return model_returns(T_ALL, N_ALL, W_ALL)


@pytest.fixture(scope="module")
def all_expected(all_data: Returns) -> np.ndarray:
    out = fc.diversification(all_data.frame, all_data.weights, window=W_ALL, step=S_ALL)
    assert out.height == len(bd.Workload(T_ALL, N_ALL, W_ALL, S_ALL).ends)
    return bd.fc_array(out)


@pytest.fixture(scope="module")
def wide_data() -> Returns:
    return model_returns(T_WIDE, N_WIDE, W_WIDE)


@pytest.fixture(scope="module")
def wide_expected(wide_data: Returns) -> np.ndarray:
    out = fc.diversification(wide_data.frame, wide_data.weights, window=W_WIDE, step=S_WIDE)
    expected = bd.fc_array(out)
    assert out.height == len(bd.Workload(T_WIDE, N_WIDE, W_WIDE, S_WIDE).ends)
    assert np.isnan(expected[:, MT]).all(), "enb_mt must be NaN when W <= N"
    return expected


@pytest.fixture(scope="module")
def market() -> Market:
    return market_data(T_MKT, N_MKT, W_MKT)


# --------------------------------------------------------------------------------------------
# 9. all measures, rolling
# --------------------------------------------------------------------------------------------


def test_all_measures_factorcore(benchmark: Any, all_data: Returns) -> None:
    d = all_data
    measure(
        benchmark,
        G_ALL,
        "factorcore",
        lambda: fc.diversification(d.frame, d.weights, window=W_ALL, step=S_ALL),
        factorcore=True,
    )


def test_all_measures_numpy_published(
    benchmark: Any, all_data: Returns, all_expected: np.ndarray
) -> None:
    d = all_data
    ends = bd.Workload(T_ALL, N_ALL, W_ALL, S_ALL).ends

    def peer() -> np.ndarray:
        return bd.run_peer(array_of(d.frame), ends, W_ALL, d.w, "published")[0]

    got = peer()
    cols = [bd.COLUMNS[j] for j in NO_MT]
    assert_columns(got[:, NO_MT], all_expected[:, NO_MT], cols, RTOL, "published-rule peer")
    assert_columns(got[:, [MT]], all_expected[:, [MT]], ["enb_mt"], RTOL_PUBLISHED_MT, "peer")
    measure(benchmark, G_ALL, "NumPy loop, published torsion rule", peer, rounds=SLOW_ROUNDS)


# --------------------------------------------------------------------------------------------
# 10. wide universe (W <= N: enb_mt NaN), peer on a sample of windows
# --------------------------------------------------------------------------------------------


def test_wide_factorcore(benchmark: Any, wide_data: Returns) -> None:
    d = wide_data
    measure(
        benchmark,
        G_WIDE,
        "factorcore",
        lambda: fc.diversification(d.frame, d.weights, window=W_WIDE, step=S_WIDE),
        factorcore=True,
    )


def test_wide_numpy_eigh(benchmark: Any, wide_data: Returns, wide_expected: np.ndarray) -> None:
    d = wide_data
    ends = bd.Workload(T_WIDE, N_WIDE, W_WIDE, S_WIDE).ends
    idx = bd.sample_indices(len(ends), SAMPLE_WINDOWS)

    def peer() -> np.ndarray:
        return bd.run_peer(array_of(d.frame), ends[idx], W_WIDE, d.w, None)[0]

    got = peer()
    cols = [bd.COLUMNS[j] for j in NO_MT]
    assert_columns(got[:, NO_MT], wide_expected[idx][:, NO_MT], cols, RTOL_WIDE, "eigh peer")
    measure(
        benchmark,
        G_WIDE,
        "NumPy cov + eigh per window",
        peer,
        scale=len(ends) / len(idx),
        rounds=SLOW_ROUNDS,
    )


# --------------------------------------------------------------------------------------------
# 11. full sample vs skfolio
# --------------------------------------------------------------------------------------------


def test_full_sample_factorcore(benchmark: Any, all_data: Returns) -> None:
    d = all_data
    measure(
        benchmark,
        G_FULL,
        "factorcore",
        lambda: fc.diversification(d.frame, d.weights),
        factorcore=True,
    )


def test_full_sample_skfolio(benchmark: Any, all_data: Returns) -> None:
    import skfolio  # noqa: F401  a missing peer fails, never skips

    d = all_data
    out = fc.diversification(d.frame, d.weights)
    want = frame_columns(out, ["diversification_ratio", "effective_n"])
    got = skfolio_scores(d.y, d.w)[None, :]
    assert_columns(got, want, ["diversification_ratio", "effective_n"], RTOL_SKFOLIO, "skfolio")
    name = "skfolio (diversification ratio and effective number of assets only)"
    measure(benchmark, G_FULL, name, lambda: skfolio_scores(array_of(d.frame), d.w))


# --------------------------------------------------------------------------------------------
# 12. risk contributions
# --------------------------------------------------------------------------------------------

RISK_COLUMNS = ["volatility", "marginal", "component", "percent"]


def test_risk_contributions_factorcore(benchmark: Any, market: Market) -> None:
    r = market.returns
    measure(
        benchmark,
        G_RISK,
        "factorcore",
        lambda: fc.risk_contributions(r.frame, r.weights),
        factorcore=True,
    )


def test_risk_contributions_numpy(benchmark: Any, market: Market) -> None:
    r = market.returns
    out = fc.risk_contributions(r.frame, r.weights)
    assert out.get_column("asset").to_list() == r.frame.columns[1:]
    got = numpy_risk_contributions(r.y, r.w)
    assert_columns(got, frame_columns(out, RISK_COLUMNS), RISK_COLUMNS, RTOL, "NumPy")
    measure(benchmark, G_RISK, "NumPy", lambda: numpy_risk_contributions(array_of(r.frame), r.w))


# --------------------------------------------------------------------------------------------
# 13. factor bets
# --------------------------------------------------------------------------------------------

BETS_COLUMNS = [
    *(f"b_{name}" for name in bx.factor_names(K_FACTORS)),
    "factor_vol",
    "diversification_ratio",
    "enb_pca",
    "enb_mt",
]


def factor_bets_call(m: Market) -> Callable[[], pl.DataFrame]:
    return lambda: fc.factor_bets(m.exposures, m.factor_frame, m.returns.weights, window=W_MKT)


def test_factor_bets_factorcore(benchmark: Any, market: Market) -> None:
    measure(benchmark, G_BETS, "factorcore", factor_bets_call(market), factorcore=True)


def test_factor_bets_numpy(benchmark: Any, market: Market) -> None:
    m = market
    out = factor_bets_call(m)()
    assert out.height == len(m.rows)

    def peer() -> np.ndarray:
        return numpy_factor_bets(m.betas, m.f, m.rows, m.returns.w, W_MKT)

    got = peer()
    assert_columns(got, frame_columns(out, BETS_COLUMNS), BETS_COLUMNS, RTOL, "NumPy loop")
    measure(benchmark, G_BETS, "NumPy loop over dates", peer, rounds=SLOW_ROUNDS)


# --------------------------------------------------------------------------------------------
# 14. correlation clusters
# --------------------------------------------------------------------------------------------


def test_correlation_clusters_factorcore(benchmark: Any, market: Market) -> None:
    frame = market.returns.frame
    measure(
        benchmark,
        G_CLUSTERS,
        "factorcore",
        lambda: fc.correlation_clusters(frame, n_clusters=N_SECTORS),
        factorcore=True,
    )


def test_correlation_clusters_scipy(benchmark: Any, market: Market) -> None:
    from sklearn.metrics import adjusted_rand_score

    r = market.returns
    out = fc.correlation_clusters(r.frame, n_clusters=N_SECTORS)
    assert out.get_column("asset").to_list() == r.frame.columns[1:]
    labels = scipy_clusters(r.y, N_SECTORS)
    assert adjusted_rand_score(out.get_column("cluster").to_numpy(), labels) == 1.0
    measure(
        benchmark,
        G_CLUSTERS,
        "SciPy linkage + fcluster",
        lambda: scipy_clusters(array_of(r.frame), N_SECTORS),
    )


# --------------------------------------------------------------------------------------------
# 15. sector coherence
# --------------------------------------------------------------------------------------------

COHERENCE_COLUMNS = ["n_assets", "intra_correlation", "inter_correlation", "adjusted_rand_index"]


def sector_coherence_call(m: Market) -> Callable[[], pl.DataFrame]:
    return lambda: fc.sector_coherence(m.returns.frame, m.sectors, window=W_MKT, step=S_MKT)


def test_sector_coherence_factorcore(benchmark: Any, market: Market) -> None:
    measure(benchmark, G_COHERENCE, "factorcore", sector_coherence_call(market), factorcore=True)


def test_sector_coherence_numpy(benchmark: Any, market: Market) -> None:
    import sklearn  # noqa: F401  a missing peer fails, never skips

    m = market
    ends = np.arange(W_MKT - 1, T_MKT, S_MKT)
    out = sector_coherence_call(m)()
    days = m.returns.frame.get_column("date")
    assert out.get_column("date").to_list() == days.gather(np.repeat(ends, N_SECTORS)).to_list()
    assert out.get_column("sector").to_list() == [f"S{s:02d}" for s in range(N_SECTORS)] * len(ends)

    def peer() -> np.ndarray:
        return numpy_sector_coherence(array_of(m.returns.frame), m.codes, ends, W_MKT)

    got = peer()
    want = frame_columns(out, COHERENCE_COLUMNS)
    assert_columns(got, want, COHERENCE_COLUMNS, RTOL, "NumPy/SciPy/sklearn loop")
    measure(benchmark, G_COHERENCE, "NumPy/SciPy/sklearn loop", peer, rounds=SLOW_ROUNDS)
