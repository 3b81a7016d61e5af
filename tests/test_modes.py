"""The prominence-based mode finder against closed forms; noise within the stated error never makes a mode."""

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

from sdesim.analysis import bonferroni_z, find_modes, peak_prominences

pytestmark = pytest.mark.repro  # counts of modes must not depend on the machine's rounding


def _g(x):
    """g'(x) = -(x + 1)(x - 1/2)(x - 3/2): maxima at -1 and 3/2, a minimum at 1/2."""
    return -(x**4 / 4 - x**3 / 3 - 0.625 * x**2 + 0.75 * x)


# g(-1) = 19/24, g(1/2) = -37/192, g(3/2) = 9/64: the lower peak rises 1/3 above the valley
X = np.arange(-2.5, 3.0 + 1e-9, 0.25)  # -1, 1/2 and 3/2 are grid points
Y = np.arange(-2.0, 2.0 + 1e-9, 0.25)


def _separable(scale=1.0):
    """g(x) - y^2/2: peaks (-1, 0), (3/2, 0); every path between them crosses the column x = 1/2,
    whose highest cell is (1/2, 0), so on this grid the key saddle is (1/2, 0) exactly."""
    return scale * (_g(X)[:, None] - Y[None, :] ** 2 / 2)


def _at(x, y=0.0):
    return (int(np.argmin(np.abs(X - x))), int(np.argmin(np.abs(Y - y))))


def test_prominence_of_a_separable_field_is_exact():
    F = _separable()
    pk = peak_prominences(F)
    assert [tuple(i) for i in pk.index] == [_at(-1.0), _at(1.5)]
    np.testing.assert_allclose(pk.height, [19 / 24, 9 / 64], rtol=1e-14)
    # the highest peak's prominence is the range of the field
    np.testing.assert_allclose(pk.prominence, [F.max() - F.min(), 1 / 3], rtol=1e-14)
    assert tuple(pk.saddle[1]) == _at(0.5) and tuple(pk.higher[1]) == _at(-1.0)
    assert np.all(pk.saddle[0] == -1) and np.all(pk.higher[0] == -1)
    # 1D: the same numbers along y = 0
    pk1 = peak_prominences(_g(X))
    np.testing.assert_allclose(pk1.prominence[1], 1 / 3, rtol=1e-14)
    # refinement: on the symmetric 3x3 stencil the least-squares quadratic of g(x) - y^2/2 separates
    # into the parabola through g(x0 - h), g(x0), g(x0 + h) and the exact -y^2/2: vertex in closed form
    m = find_modes(F, [X, Y])
    h = X[1] - X[0]
    for (x0, y0), row in zip([(-1.0, 0.0), (1.5, 0.0)], m.position):
        a, b, c = _g(x0 - h), _g(x0), _g(x0 + h)
        np.testing.assert_allclose(row, [x0 + h * 0.5 * (a - c) / (a - 2 * b + c), 0.0], atol=1e-12)


def _two_gaussians():
    """log of w1 N(mu1, s^2 I) + w2 N(mu2, s^2 I) (up to a constant) and its exact critical values.

    The gradient is a positive combination of (mu_i - x), so the critical points
    lie on the segment mu1-mu2; there log p(mu1 + u (mu2 - mu1)) is 1D.
    """
    mu1, mu2, s, w1, w2 = np.array([-0.7, 0.2]), np.array([0.8, -0.35]), 0.5, 1.0, 0.6
    L2 = np.sum((mu2 - mu1) ** 2)

    def f(u):
        return np.logaddexp(np.log(w1) - u * u * L2 / (2 * s * s), np.log(w2) - (1 - u) ** 2 * L2 / (2 * s * s))

    fp = lambda u: (f(u + 1e-6) - f(u - 1e-6)) / 2e-6  # noqa: E731
    u = np.linspace(-0.3, 1.3, 3201)
    sign = np.flatnonzero(np.diff(np.sign(fp(u))))
    crit = [scipy.optimize.brentq(fp, u[i], u[i + 1], xtol=1e-14) for i in sign]
    assert len(crit) == 3  # peak, saddle, peak
    vals = [f(c) for c in crit]
    pts = [mu1 + c * (mu2 - mu1) for c in crit]

    def logp(Xg, Yg):
        d1 = (Xg - mu1[0]) ** 2 + (Yg - mu1[1]) ** 2
        d2 = (Xg - mu2[0]) ** 2 + (Yg - mu2[1]) ** 2
        return np.logaddexp(np.log(w1) - d1 / (2 * s * s), np.log(w2) - d2 / (2 * s * s))

    # Hessian of log p: -I/s^2 + (posterior covariance of the means)/s^4, the latter <= L2/4
    M = max(1 / s**2, L2 / (4 * s**4) - 1 / s**2)
    return logp, vals, pts, M


def test_prominence_of_two_gaussians_matches_the_exact_saddle():
    """Off-grid peaks: grid values differ from the exact ones by O(h^2).

    A grid peak is within h/2 per axis of the true one: deficit <= M k h^2 / 8
    = M h^2 / 4 (|Hessian| <= M). The grid pass is within M h^2 / 2 of the
    saddle value (a grid path near the ridge loses at most (b + M) h^2 / 4;
    any grid path, drawn as a polyline, dips below its vertices by at most
    M (sqrt(2) h)^2 / 8). So |prominence error| <= 3/4 M h^2 < M h^2.
    """
    logp, (peak1, saddle, peak2), pts, M = _two_gaussians()
    h = 0.02
    xs = np.arange(-2.0, 2.0 + 1e-9, h)
    Xg, Yg = np.meshgrid(xs, xs, indexing="ij")
    m = find_modes(logp(Xg, Yg), [xs, xs])
    assert len(m) == 2
    exact_lo = min(peak1, peak2) - saddle
    assert abs(m.prominence[1] - exact_lo) < M * h * h, (m.prominence[1], exact_lo, M * h * h)
    assert abs(m.log_density[0] - max(peak1, peak2)) < M * h * h / 4
    # refined positions: well inside the half cell the peak cell alone guarantees
    exact_pos = np.array([pts[0], pts[2]])[np.argsort([-peak1, -peak2])]
    assert np.abs(m.position - exact_pos).max() < h / 2


@pytest.mark.parametrize("scale, kept", [(0.15, False), (0.6, True)])
def test_bump_below_the_threshold_is_dropped_above_is_kept(scale, kept):
    """Constant error eps: the threshold is exactly 2 eps. Prominence scale/3 = 0.05 < 0.1 < 0.2."""
    eps = 0.05
    m = find_modes(_separable(scale), [X, Y], error=eps)
    assert len(m) == (2 if kept else 1)
    assert tuple(m.index[0]) == _at(-1.0)
    if kept:
        np.testing.assert_allclose(m.prominence[1], scale / 3, rtol=1e-13)
        np.testing.assert_allclose(m.threshold, [0.0, 2 * eps], rtol=1e-13)
    # the same with a fixed threshold
    assert len(find_modes(_separable(scale), [X, Y], min_prominence=2 * eps)) == len(m)


def test_bounded_noise_within_the_error_never_makes_a_mode():
    """|noise| <= eps on every cell: exactly the two true peaks (prominences 1/3 and more > 4 eps)."""
    eps = 0.05
    F = _separable()
    counts, counts_raw = [], []
    for seed in range(200):
        noise = np.random.default_rng(seed).uniform(-eps, eps, F.shape)
        counts.append(len(find_modes(F + noise, [X, Y], error=eps)))
        counts_raw.append(len(find_modes(F + noise, [X, Y])))
    assert set(counts) == {2}
    assert np.sum(np.array(counts_raw) > 2) > 10  # without the error the noise does make modes (29 seeds)


def test_gaussian_noise_with_bonferroni_error_never_makes_a_mode():
    """A flat top (neighbouring cells differ by ~h^2/2) plus N(0, sigma^2) noise; eps = z sigma with
    z = bonferroni_z(cells): P(any |noise| > eps) <= 1 % per seed, and a spurious peak needs more."""
    h, sigma = 0.05, 0.01
    xs = np.arange(-1.5, 1.5 + 1e-9, h)
    Xg, Yg = np.meshgrid(xs, xs, indexing="ij")
    F = -(Xg**2 + 0.5 * Yg**2) / 2
    z = bonferroni_z(F.size, 0.01)
    counts, counts_raw = [], []
    for seed in range(200):
        noisy = F + sigma * np.random.default_rng(seed).standard_normal(F.shape)
        m = find_modes(noisy, [xs, xs], error=z * sigma)
        counts.append(len(m))
        counts_raw.append(len(find_modes(noisy, [xs, xs])))
        assert np.abs(m.position[0]).max() < 0.5
    assert set(counts) == {1}
    assert min(counts_raw) > 1


def test_last_bit_ties_do_not_change_the_count():
    """Example 19's failure: a maximum exactly between two cells (grid symmetric in y), values equal
    up to rounding. The total order makes a two-cell plateau one peak; no error bound is needed."""
    xs = (np.arange(64) + 0.5) * 7 / 64 - 3.5
    Xg, Yg = np.meshgrid(xs, xs, indexing="ij")
    F = -((Xg**2 - 1) ** 2) / 4 - Yg**2 / 2
    naive = []
    for seed in range(50):
        k = np.random.default_rng(seed).integers(-2, 3, F.shape)
        G = F * (1 + k * np.finfo(float).eps)  # a few units in the last place
        assert len(find_modes(G, [xs, xs], min_log_ratio=np.log(1e-3))) == 2
        # the former rule (a cell >= its 8 neighbours) counts 2 to 4 here
        c = G[1:-1, 1:-1]
        ismax = np.ones(c.shape, bool)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    ismax &= c >= G[1 + di : 63 + di, 1 + dj : 63 + dj]
        naive.append(int(ismax.sum()))
    assert max(naive) > 2


def test_error_far_below_the_saddle_does_not_hide_a_peak():
    F = _separable()
    saddle = _g(0.5)
    # unknown error in the deep tail, 0.01 elsewhere: both peaks kept
    m = find_modes(F, [X, Y], error=np.where(F < saddle - 1.0, np.nan, 0.01))
    assert len(m) == 2 and m.threshold[1] < 1 / 3
    # an unknown error next to the lower peak hides it
    err = np.full(F.shape, 0.01)
    err[_at(1.25)] = np.nan
    assert len(find_modes(F, [X, Y], error=err)) == 1
    # only differences within each side count: the far well's depth may be off by 5
    off = np.where(X[:, None] < 0.25, 5.0, 0.0) + np.zeros(F.shape)
    m = find_modes(F, [X, Y], error=0.0, error_offset=off)
    assert len(m) == 2
    # a constant offset changes nothing; an offset step across the lower peak's side does
    assert len(find_modes(F, [X, Y], error_offset=np.full(F.shape, 3.0))) == 2
    step = np.where(X[:, None] > 1.4, 1.0, 0.0) + np.zeros(F.shape)  # between the peak and its neighbour
    assert len(find_modes(F, [X, Y], error_offset=step)) == 1


def test_edge_peaks_height_cut_and_empty_input():
    # a ramp: the maximum is on the edge, no interior mode
    assert len(find_modes(np.add.outer(X, Y), [X, Y])) == 0
    # min_log_ratio drops the lower peak (19/24 - 9/64 = 0.65 below the top)
    assert len(find_modes(_separable(), [X, Y], min_log_ratio=-0.6)) == 1
    assert len(find_modes(_separable(), [X, Y], min_log_ratio=-0.7)) == 2
    assert len(find_modes(np.full((5, 5), np.nan), [np.arange(5.0)] * 2)) == 0
    # 1D, with -inf (no density) treated as the lowest level
    x = np.linspace(-3, 3, 61)
    lp = np.where(np.abs(x) < 2.5, -((x * x - 1) ** 2) / 0.4, -np.inf)
    m = find_modes(lp, [x], error=0.01)
    a, b, c = -((0.81 - 1) ** 2) / 0.4, 0.0, -((1.21 - 1) ** 2) / 0.4  # the parabola through x = 0.9, 1, 1.1
    np.testing.assert_allclose(np.sort(m.position[:, 0]), np.array([-1.0, 1.0]) * (1 + 0.05 * (a - c) / (a - 2 * b + c)),
                               atol=1e-12)
    d = m.to_dict()
    assert set(d) == {"position", "index", "log_density", "prominence", "threshold"}
    with pytest.raises(ValueError, match="^centers:"):
        find_modes(_separable(), [X])


def test_bonferroni_z():
    np.testing.assert_allclose(bonferroni_z(1, 0.05), scipy.stats.norm.ppf(0.975), rtol=1e-12)
    np.testing.assert_allclose(bonferroni_z(1000, 0.01), scipy.stats.norm.ppf(1 - 0.01 / 2000), rtol=1e-12)
