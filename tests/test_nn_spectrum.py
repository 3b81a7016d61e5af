"""sdesim.nn.diffusion_spectrum against independent computations.

* Gram path vs a brute-force d x d float64 NumPy computation from a
  per-example loop (eigenvalues to 1e-6 relative, identical matrix_rank).
* Per-example gradients of a softmax-linear model vs the closed form.
* D is PSD, rank <= N - 1, invariant to the order of the examples.
* Minibatch gradient covariance: exactly D/b with replacement and
  D/b * (N-b)/(N-1) without (enumerating every batch), and a Monte-Carlo
  check of the training sampler with a tolerance from its sampling error.
"""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import sdesim.nn as nn
from sdesim.diffusion import LowRankDiagonal


@pytest.fixture(autouse=True)
def _x64():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


@pytest.fixture(scope="module")
def small_problem():
    """tiny-fc with 8 hidden units (float64, 461 weights) on 40 standardised 7x7 digits of 5 classes."""
    jax.config.update("jax_enable_x64", True)
    data = nn.load_digits(classes=5, size=7)
    x, y = data.x_train[:40].astype(np.float64), data.y_train[:40]
    model = nn.tiny_fc(jax.random.PRNGKey(3), hidden=8, dtype=jnp.float64)
    # batch-norm buffers away from (0, 1) so that evaluation mode is non-trivial
    bn = model.layers[2]
    rng = np.random.default_rng(0)
    stats = nn.RunningStats(jnp.asarray(rng.normal(0, 0.3, 8)), jnp.asarray(rng.uniform(0.5, 2.0, 8)))
    model = eqx.tree_at(lambda m: m.layers[2].stats, model, stats)
    assert isinstance(bn, nn.BatchNorm)
    return model, x, y


def _brute_force_grads(model, x, y):
    """Per-example loop: jax.grad of the pytree loss, one example at a time, raveled in NumPy."""
    params, static = eqx.partition(model, nn.trainable(model))

    @jax.jit
    def grad_k(p, xk, yk):
        def loss(p):
            logits = eqx.combine(p, static)(xk[None])[0]
            return -jax.nn.log_softmax(logits)[yk]

        return jax.grad(loss)(p)

    rows = []
    for k in range(x.shape[0]):
        g = grad_k(params, x[k], int(y[k]))
        rows.append(np.concatenate([np.asarray(l, np.float64).ravel() for l in jax.tree_util.tree_leaves(g)]))
    return np.stack(rows)


def test_gram_path_equals_brute_force(small_problem):
    model, x, y = small_problem
    spec = nn.diffusion_spectrum(model, x, y, method="gram")
    N, d = x.shape[0], nn.n_weights(model)
    assert spec.method == "gram" and spec.dim == d == 461 and spec.eps_dtype == "float64"
    G = _brute_force_grads(model, x, y)
    D = np.zeros((d, d))
    gbar = G.mean(axis=0)
    for g in G:
        D += np.outer(g, g) / N
    D -= np.outer(gbar, gbar)
    lam = np.sort(np.linalg.eigvalsh(D))[::-1]
    rank = np.linalg.matrix_rank(D)  # tol = S.max() * d * eps(float64)
    assert spec.rank == rank == N - 1
    top = lam[:rank]
    np.testing.assert_allclose(spec.eigvals[:rank], top, rtol=1e-6)
    np.testing.assert_allclose(spec.eigvals[rank:], lam[rank:], atol=1e-6 * lam[0])
    np.testing.assert_allclose(spec.mean, np.trace(D) / d, rtol=1e-9)
    np.testing.assert_allclose(spec.diag, np.diag(D), rtol=1e-8, atol=1e-14)
    # eigenvectors in weight space: D v = lam v, orthonormal
    V = spec.eigvecs
    assert V.shape == (d, rank)
    np.testing.assert_allclose(D @ V[:, :10], V[:, :10] * spec.eigvals[:10], atol=1e-8 * lam[0])
    np.testing.assert_allclose(V.T @ V, np.eye(rank), atol=1e-8)
    # float32 gradients use float32's eps in the rank rule
    s32 = nn.diffusion_spectrum(G.astype(np.float32))
    assert s32.eps_dtype == "float32" and s32.threshold == pytest.approx(lam[0] * d * np.finfo(np.float32).eps, rel=1e-5)


def test_per_example_grads_match_closed_form_softmax_regression():
    rng = np.random.default_rng(0)
    key = jax.random.PRNGKey(1)
    model = nn.Sequential((nn.Flatten(), nn.Linear(6, 4, key=key, dtype=jnp.float64)), "softmax")
    x = rng.normal(size=(13, 1, 2, 3))
    y = rng.integers(0, 4, size=13)
    G = np.asarray(nn.per_example_grads(model, x, y, chunk_size=5))
    W, b = np.asarray(model.layers[1].weight), np.asarray(model.layers[1].bias)
    X = x.reshape(13, 6)
    z = X @ W.T + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    r = p - np.eye(4)[y]  # d loss / d logits
    ref = np.concatenate([np.einsum("ko,ki->koi", r, X).reshape(13, -1), r], axis=1)
    np.testing.assert_allclose(G, ref, rtol=1e-10, atol=1e-12)
    # the mean of the rows is the full-batch gradient computed by one backward pass
    np.testing.assert_allclose(G.mean(0), np.asarray(nn.full_gradient(model, x, y)), atol=1e-12)


def test_psd_rank_bound_order_invariance_and_paths(small_problem):
    model, x, y = small_problem
    G = np.asarray(nn.per_example_grads(model, x, y, chunk_size=16))
    s = nn.diffusion_spectrum(G)
    assert s.eigvals.min() >= -s.threshold
    assert s.rank <= G.shape[0] - 1
    np.testing.assert_array_equal(np.diff(s.eigvals) <= 1e-15 * s.eigvals[0], True)
    perm = np.random.default_rng(0).permutation(G.shape[0])
    sp = nn.diffusion_spectrum(G[perm])
    np.testing.assert_allclose(sp.eigvals, s.eigvals, rtol=1e-9, atol=1e-12 * s.eigvals[0])
    assert sp.rank == s.rank
    # chunking does not change the gradients
    np.testing.assert_allclose(np.asarray(nn.per_example_grads(model, x, y, chunk_size=40)), G, rtol=1e-12, atol=1e-15)
    # dense path (d <= N): a few columns, more rows
    Gs = np.random.default_rng(1).normal(size=(60, 30)) * np.linspace(0.1, 1.0, 30)
    dense = nn.diffusion_spectrum(Gs)
    gram = nn.diffusion_spectrum(Gs, method="gram")
    assert dense.method == "dense" and dense.rank == gram.rank == 30
    np.testing.assert_allclose(dense.eigvals, gram.eigvals, rtol=1e-9, atol=1e-12 * dense.eigvals[0])
    np.testing.assert_allclose(np.abs(dense.eigvecs.T @ gram.eigvecs), np.eye(30), atol=1e-6)
    np.testing.assert_allclose(np.linalg.eigvalsh(nn.diffusion_matrix(Gs))[::-1], dense.eigvals, atol=1e-12 * dense.eigvals[0])


def test_minibatch_covariance_exact_enumeration(small_problem):
    """Cov of minibatch gradients over every possible batch (no sampling error)."""
    model, x, y = small_problem
    N = 8
    x, y = x[:N], y[:N]
    D = nn.diffusion_matrix(nn.per_example_grads(model, x, y))
    g = np.asarray(nn.full_gradient(model, x, y))

    def cov_over(batches):
        gb = np.stack([np.asarray(nn.full_gradient(model, x[list(B)], y[list(B)])) for B in batches])
        np.testing.assert_allclose(gb.mean(0), g, atol=1e-12)  # unbiased
        c = gb - g
        return c.T @ c / len(gb)

    b = 4  # without replacement: all C(8, 4) = 70 subsets, equally likely
    C_wo = cov_over(itertools.combinations(range(N), b))
    np.testing.assert_allclose(C_wo, D * (N - b) / ((N - 1) * b), atol=1e-12 * np.abs(D).max())
    assert nn.minibatch_covariance_factor(b, N, replacement=False) == pytest.approx((N - b) / ((N - 1) * b))
    # the paper's (1 - b/N) approximation is off by N/(N-1) here
    assert not np.allclose(C_wo, D / b * (1 - b / N), atol=1e-3 * np.abs(D).max())
    b = 2  # with replacement: all 8^2 ordered draws, equally likely
    C_w = cov_over(itertools.product(range(N), repeat=b))
    np.testing.assert_allclose(C_w, D / b, atol=1e-12 * np.abs(D).max())


@pytest.mark.parametrize("replacement", [True, False])
def test_minibatch_sampler_monte_carlo(small_problem, replacement):
    """E ||g_b - g||^2 = c tr D for the training sampler, 5 sigma of its own sampling error."""
    model, x, y = small_problem
    G = np.asarray(nn.per_example_grads(model, x, y))
    N, b, M = G.shape[0], 10, 4000
    s = nn.diffusion_spectrum(G, top_k=0)
    if replacement:
        idx = np.asarray(nn.minibatch_indices(jax.random.PRNGKey(7), N, b, M, replacement=True))
    else:  # M / (N / b) epochs, each a fresh permutation cut into N / b batches
        keys = jax.random.split(jax.random.PRNGKey(7), M // (N // b))
        idx = np.asarray(jax.vmap(lambda k: nn.minibatch_indices(k, N, b, N // b, replacement=False))(keys))
        idx = idx.reshape(-1, b)
    gb = G[idx].mean(axis=1)
    sq = np.sum((gb - G.mean(0)) ** 2, axis=1)
    est, se = sq.mean(), sq.std(ddof=1) / np.sqrt(len(sq))
    c = nn.minibatch_covariance_factor(b, N, replacement)
    other = nn.minibatch_covariance_factor(b, N, not replacement)
    assert abs(est - c * s.trace) < 5 * se
    assert abs(c - other) * s.trace > 10 * se  # the test can tell the two apart


def test_to_noise_lowrank_export(small_problem):
    model, x, y = small_problem
    G = np.asarray(nn.per_example_grads(model, x, y))
    D = nn.diffusion_matrix(G)
    s = nn.diffusion_spectrum(G)
    noise = s.to_noise()
    assert isinstance(noise, LowRankDiagonal) and noise.rank == s.rank and noise.diag is None
    assert noise.dim == s.dim and noise.noise_dim == s.rank
    F = np.asarray(noise.factor)
    np.testing.assert_allclose(F @ F.T, D, atol=1e-9 * s.eigvals[0])
    n5 = s.to_noise(rank=5, diag="residual")
    F5 = np.asarray(n5.factor)
    np.testing.assert_allclose(np.diag(F5 @ F5.T) + np.asarray(n5.diag), np.diag(D), atol=1e-12)
    np.testing.assert_allclose(n5.mean_eigenvalue(), s.mean, rtol=1e-9)
    # best rank-5 approximation: Frobenius error^2 = sum of the dropped eigenvalues^2
    np.testing.assert_allclose(np.sum((D - F5 @ F5.T) ** 2), np.sum(s.eigvals[5:] ** 2), rtol=1e-6)
    # apply: covariance of L z is D (two thin products)
    z = jax.random.normal(jax.random.PRNGKey(0), (noise.noise_dim,))
    np.testing.assert_allclose(np.asarray(noise.apply(jnp.zeros(s.dim), z)), F @ np.asarray(z), rtol=1e-10)
    assert s.to_noise(rank=3, diag=0.1).noise_dim == 3 + s.dim
    with pytest.raises(ValueError, match="rank"):
        s.to_noise(rank=s.rank + 1)
    with pytest.raises(ValueError, match="diag"):
        s.to_noise(diag="full")
    with pytest.raises(ValueError, match="diag"):
        s.to_noise(diag=-1.0)


def test_remarks_15_16_and_errors():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(20, 50)) * np.linspace(0.1, 2.0, 50)
    s = nn.diffusion_spectrum(G)
    D = nn.diffusion_matrix(G)
    lam = np.linalg.eigvalsh(D)
    assert s.rank == 19 and s.rank_fraction == pytest.approx(19 / 50)
    assert s.temperature_normaliser(0.1, 32) == pytest.approx(0.1 / 32 * np.trace(D) / 50)
    assert s.architecture_score == pytest.approx(19 / 50 + np.var(lam), rel=1e-9)
    assert s.std == pytest.approx(np.std(lam), rel=1e-9)
    js = s.summary()
    assert js["rank_percent"] == pytest.approx(38.0) and js["eps_dtype"] == "float64"
    with pytest.raises(ValueError, match="grads"):
        nn.diffusion_spectrum(G[0])
    with pytest.raises(ValueError, match="grads"):
        nn.diffusion_spectrum(np.where(G > 1, np.nan, G))
    with pytest.raises(ValueError, match="method"):
        nn.diffusion_spectrum(G, method="svd")
    with pytest.raises(ValueError, match="x, y"):
        nn.diffusion_spectrum(nn.tiny_fc(jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match="lr"):
        s.temperature_normaliser(0.0, 32)
    with pytest.raises(ValueError, match="batch"):
        nn.minibatch_covariance_factor(9, 8, replacement=False)


def test_gradient_matrix_orientation():
    """Rows are examples: a stated N (n_examples, or the length of x / y) that the rows do not match
    is refused, naming grads.T when the columns match; a bare matrix is taken as given."""
    rng = np.random.default_rng(2)
    G = rng.normal(size=(12, 30))
    ref = nn.diffusion_spectrum(G, top_k=0)
    np.testing.assert_array_equal(nn.diffusion_spectrum(G, n_examples=12, top_k=0).eigvals, ref.eigvals)
    np.testing.assert_array_equal(nn.diffusion_spectrum(G, np.zeros((12, 3)), top_k=0).eigvals, ref.eigvals)
    with pytest.raises(ValueError, match=r"^grads: has shape \(30, 12\).*N = 12.*pass grads\.T"):
        nn.diffusion_spectrum(G.T, n_examples=12)
    with pytest.raises(ValueError, match=r"^grads: .*pass grads\.T"):
        nn.diffusion_spectrum(G.T, y=np.zeros(12))
    with pytest.raises(ValueError, match="^grads: has 10 rows"):
        nn.diffusion_spectrum(G[:10], n_examples=12)
    with pytest.raises(ValueError, match="^n_examples"):
        nn.diffusion_spectrum(G, n_examples=0)
    with pytest.raises(ValueError, match="^x, y"):
        nn.diffusion_spectrum(G, np.zeros(12), np.zeros(11))
    assert nn.diffusion_spectrum(G.T, top_k=0).n_examples == 30  # more rows than columns: nothing wrong


def test_eigvec_tree_of_a_sequential_model(small_problem):
    """sdesim's own models: eigenvectors come back Sequential-shaped, None at batch-norm buffers."""
    model, x, y = small_problem
    spec = nn.diffusion_spectrum(model, x, y, top_k=2)
    t = spec.eigvec_tree(1)
    assert isinstance(t, nn.Sequential) and t.layers[2].stats.mean is None and t.layers[2].stats.var is None
    w, _ = nn.flat_weights(model)
    np.testing.assert_array_equal(
        np.concatenate([np.ravel(l) for l in jax.tree_util.tree_leaves(t)]), spec.eigvecs[:, 1])
    assert t.layers[1].weight.shape == model.layers[1].weight.shape and w.shape == (spec.dim,)
    with pytest.raises(ValueError, match="^k"):
        spec.eigvec_tree(2)


def test_exported_noise_drives_the_sde():
    """The exported D runs through sdesim.simulate without forming d x d.

    With zero drift from x0 = 0 every state lies in the span of the kept
    eigenvectors (the noise has no component outside it).
    """
    import sdesim

    rng = np.random.default_rng(1)
    G = rng.normal(size=(12, 200))
    s = nn.diffusion_spectrum(G)
    noise = s.to_noise()
    prob = sdesim.problems.custom(lambda w: jnp.zeros_like(w), noise, 200)
    try:
        ens = sdesim.simulate(prob, beta_inv=0.01, n_particles=8, n_steps=20, dt=0.01, seed=0)
    except NotImplementedError:
        pytest.skip("sdesim.simulate not available yet")
    X = np.asarray(ens.x, dtype=np.float64).reshape(-1, 200)
    assert np.all(np.isfinite(X)) and np.abs(X).max() > 0
    V = s.eigvecs
    resid = X - (X @ V) @ V.T
    assert np.abs(resid).max() < 1e-5 * np.abs(X).max()


def test_weight_space_sde_with_measured_noise():
    """End to end: measured D -> LowRankDiagonal -> SDE over the d = 917 weights of tiny-fc.

    SGD's SDE (docs/paper.md §1) with dt = lr and beta^-1 = lr / (2 b) lowers the
    training loss from the initial weights, and stays finite.
    """
    import sdesim

    data = nn.load_digits(classes=5, size=7)
    x, y = jnp.asarray(data.x_train[:100]), jnp.asarray(data.y_train[:100])
    model = nn.tiny_fc(jax.random.PRNGKey(0))
    s = nn.diffusion_spectrum(model, x, y)
    noise = s.to_noise(diag="residual")
    w0, rebuild = nn.flat_weights(model)

    def loss(w):
        return jnp.mean(nn.cross_entropy(rebuild(w)(x), y))

    prob = sdesim.problems.custom(jax.grad(loss), noise, s.dim)
    lr, b = 0.1, 10
    try:
        ens = sdesim.simulate(prob, beta_inv=lr / (2 * b), n_particles=2, n_steps=100, dt=lr, seed=0, x0=w0)
    except NotImplementedError:
        pytest.skip("sdesim.simulate not available yet")
    W = jnp.asarray(ens.x[-1])
    assert W.shape == (2, s.dim) and bool(jnp.all(jnp.isfinite(W)))
    final = [float(loss(w.astype(w0.dtype))) for w in W]
    assert max(final) < 0.7 * float(loss(w0))
