"""A user's own model through sdesim.nn and sdesim.chains: an equinox MLP (49-16-10, tanh).

* The diffusion spectrum of ``eqx.nn.MLP`` equals a brute-force float64
  ``D = G^T G / N - g g^T`` built from ``jax.vmap(jax.grad)`` through jax's own
  ``ravel_pytree`` (an independent flattening) and ``numpy.linalg.eigh``: top
  eigenvalues to 1e-6 relative, the same numerical rank; the top eigenvector
  comes back MLP-shaped and satisfies ``D v = lam v``.
* A pure function with a parameter PyTree (``FunctionModel`` and the plain pair)
  gives the same per-example gradients as the equivalent equinox model.
* Weight decay ``(lambda/2)||w||^2`` shifts every per-example gradient by
  ``lambda w``: ``D`` is unchanged, the mean gradient moves by ``lambda w``.
* ``train`` with an optax optimizer lowers the loss, ``accuracy`` matches a
  hand count, and models come back in the form they were given.
* ``FiniteSum.from_model``: its gradient equals the mean per-example gradient;
  ``chains.sgd``, ``sgld`` and ``sde(fs.problem())`` run on it.
* Every wrong input raises one ValueError naming the argument.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import sdesim.chains as C
import sdesim.nn as nn

N = 200  # examples; the MLP has d = 49*16 + 16 + 16*10 + 10 = 970 weights


@pytest.fixture(scope="module")
def digits():
    """200 standardised 7x7 digits of 10 classes, each flattened to a 49-vector."""
    return nn.load_digits(classes=10, size=7).subset(N, seed=0).flatten()


def _mlp(dtype, seed=0):
    return eqx.nn.MLP(49, 10, 16, 1, activation=jnp.tanh, dtype=dtype, key=jax.random.PRNGKey(seed))


def _apply(params, xi):
    """The same network as a pure function of a parameter PyTree (list of (W, b))."""
    (W0, b0), (W1, b1) = params
    return W1 @ jnp.tanh(W0 @ xi + b0) + b1


def _params_of(mlp):
    return [(l.weight, l.bias) for l in mlp.layers]


def _brute_force_grads(mlp, x, y, weight_decay=0.0):
    """jax.vmap(jax.grad) of the cross-entropy over jax's own ravel_pytree of the weights."""
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    w0, unravel = ravel_pytree(params)

    def loss(w, xi, yi):
        logits = eqx.combine(unravel(w), static)(xi)
        return -jax.nn.log_softmax(logits)[yi] + 0.5 * weight_decay * jnp.sum(w**2)

    G = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(w0, jnp.asarray(x), jnp.asarray(y))
    return np.asarray(G, np.float64), np.asarray(w0)


def test_mlp_spectrum_equals_brute_force(digits):
    mlp = _mlp(jnp.float64)
    x, y = digits.x_train, digits.y_train
    spec = nn.diffusion_spectrum(mlp, x, y, top_k=5)
    assert spec.dim == 970 and spec.n_examples == N and spec.method == "gram" and spec.eps_dtype == "float64"
    G, _ = _brute_force_grads(mlp, x, y)
    gbar = G.mean(axis=0)
    D = G.T @ G / N - np.outer(gbar, gbar)
    lam, V = np.linalg.eigh(D)
    lam, V = lam[::-1], V[:, ::-1]
    top = 20
    rel = np.abs(spec.eigvals[:top] - lam[:top]) / lam[:top]
    assert rel.max() < 1e-6, rel.max()
    # numerical rank: numpy's matrix_rank rule on the dense D (float64 eps)
    assert spec.rank == np.linalg.matrix_rank(D) == N - 1
    np.testing.assert_allclose(spec.mean, np.trace(D) / 970, rtol=1e-9)
    np.testing.assert_allclose(spec.mean_gradient, gbar, rtol=1e-9, atol=1e-15)
    # the top eigenvector as an MLP-shaped PyTree, and back
    v_tree = spec.eigvec_tree(0)
    assert isinstance(v_tree, eqx.nn.MLP) and v_tree.layers[0].weight.shape == (16, 49)
    v = np.asarray(ravel_pytree(eqx.filter(v_tree, eqx.is_inexact_array))[0])
    np.testing.assert_array_equal(v, spec.eigvecs[:, 0])
    np.testing.assert_allclose(D @ v, spec.eigvals[0] * v, atol=1e-9 * spec.eigvals[0])
    assert abs(v @ V[:, 0]) == pytest.approx(1.0, abs=1e-9)
    # the same numbers from the gradient matrix itself
    G_ours = np.asarray(nn.per_example_grads(mlp, x, y))
    assert G_ours.shape == (N, 970)
    np.testing.assert_allclose(G_ours, G, rtol=1e-10, atol=1e-13 * np.abs(G).max())


def test_function_model_gives_the_same_gradients(digits):
    mlp = _mlp(jnp.float64)
    x, y = digits.x_train[:50], digits.y_train[:50]
    G = np.asarray(nn.per_example_grads(mlp, x, y))
    fm = nn.FunctionModel(_apply, _params_of(mlp))
    G_fm = np.asarray(nn.per_example_grads(fm, x, y))
    G_pair = np.asarray(nn.per_example_grads((_apply, _params_of(mlp)), x, y))
    tol = 1e-13 * np.abs(G).max()
    np.testing.assert_allclose(G_fm, G, rtol=1e-12, atol=tol)
    np.testing.assert_allclose(G_pair, G, rtol=1e-12, atol=tol)
    # flat weights in the same order; eigenvectors come back as the params PyTree
    np.testing.assert_array_equal(nn.flat_weights(fm)[0], nn.flat_weights(mlp)[0])
    spec = nn.diffusion_spectrum((_apply, _params_of(mlp)), x, y, top_k=1)
    tree = spec.eigvec_tree(0)
    assert isinstance(tree, list) and tree[0][0].shape == (16, 49) and tree[1][1].shape == (10,)
    # a user loss: squared error to one-hot targets, against the brute-force route
    def sq(model, xi, yi):
        return 0.5 * jnp.sum((model(xi) - jax.nn.one_hot(yi, 10)) ** 2)

    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    w0, unravel = ravel_pytree(params)
    G_sq = jax.vmap(jax.grad(lambda w, xi, yi: sq(eqx.combine(unravel(w), static), xi, yi)),
                    in_axes=(None, 0, 0))(w0, jnp.asarray(x), jnp.asarray(y))
    np.testing.assert_allclose(nn.per_example_grads(fm, x, y, loss=sq), G_sq, rtol=1e-10, atol=1e-14)
    # rebuilding from the flat vector gives the user's form back
    w, rebuild = nn.flat_weights((_apply, _params_of(mlp)))
    fn, p = rebuild(2 * w)
    assert fn is _apply
    np.testing.assert_allclose(p[1][0], 2 * mlp.layers[1].weight)


def test_weight_decay_shifts_gradients_not_D(digits):
    mlp = _mlp(jnp.float64)
    x, y = digits.x_train[:60], digits.y_train[:60]
    lam = 1e-2
    G = np.asarray(nn.per_example_grads(mlp, x, y))
    G_wd = np.asarray(nn.per_example_grads(mlp, x, y, loss=nn.CrossEntropyLoss(weight_decay=lam)))
    G_bf, w0 = _brute_force_grads(mlp, x, y, weight_decay=lam)
    np.testing.assert_allclose(G_wd, G_bf, rtol=1e-10, atol=1e-13 * np.abs(G_bf).max())
    np.testing.assert_allclose(G_wd - G, np.broadcast_to(lam * w0, G.shape), atol=1e-14)
    s, s_wd = nn.diffusion_spectrum(G, top_k=0), nn.diffusion_spectrum(G_wd, top_k=0)
    np.testing.assert_allclose(s_wd.eigvals[:50], s.eigvals[:50], rtol=1e-9)
    np.testing.assert_allclose(s_wd.mean_gradient - s.mean_gradient, lam * w0, atol=1e-14)
    with pytest.raises(ValueError, match="^weight_decay"):
        nn.CrossEntropyLoss(weight_decay=-1.0)


def test_train_and_accuracy(digits, tmp_path):
    mlp = _mlp(jnp.float32)
    x, y = digits.x_train, digits.y_train
    out = jax.vmap(mlp)(jnp.asarray(x, jnp.float32))
    assert nn.accuracy(mlp, x, y) == pytest.approx(float(np.mean(np.argmax(out, -1) == y)))
    # a regression loss on real targets: the mean loss, and no accuracy to report
    t = np.asarray(out, np.float64) + 1.0
    mse, acc_t = nn.evaluate(mlp, x, t, loss=lambda m, xi, ti: 0.5 * jnp.sum((m(xi) - ti) ** 2))
    assert mse == pytest.approx(5.0, rel=1e-5) and np.isnan(acc_t)
    run = nn.train(mlp, digits, epochs=5, batch_size=20, optimizer=optax.adam(1e-2),
                   loss=nn.CrossEntropyLoss(weight_decay=1e-4), checkpoints=(0.4, 1.0),
                   checkpoint_dir=str(tmp_path))
    h = run.history
    assert isinstance(run.model, eqx.nn.MLP) and all(isinstance(c.model, eqx.nn.MLP) for c in run.checkpoints)
    assert h["train_loss"][-1] < 0.7 * h["train_loss"][0], h["train_loss"]
    acc0, acc = nn.accuracy(mlp, x, y), nn.accuracy(run.model, x, y)
    assert acc > acc0 + 0.3 and acc == pytest.approx(h["train_accuracy"][-1])
    back = nn.load_checkpoint(str(tmp_path / "ckpt_100.eqx"), mlp)
    np.testing.assert_array_equal(nn.flat_weights(back)[0], nn.flat_weights(run.model)[0])
    # the default SGD + Nesterov with a pure-function model: the pair comes back as a pair
    run2 = nn.train((_apply, _params_of(mlp)), digits, epochs=2, batch_size=20, lr=0.1,
                    schedule="constant", checkpoints=(1.0,))
    fn, p = run2.model
    assert fn is _apply and p[0][0].shape == (16, 49)
    assert run2.history["train_loss"][-1] < run2.history["train_loss"][0]


def test_finite_sum_from_model_and_chain_kernels(digits):
    x, y = digits.x_train, digits.y_train
    mlp64 = _mlp(jnp.float64)
    fs = C.FiniteSum.from_model(mlp64, x, y)
    assert fs.dim == 970 and fs.n_data == N and fs.x0.shape == (970,)
    np.testing.assert_array_equal(fs.x0, nn.flat_weights(mlp64)[0])
    G = np.asarray(nn.per_example_grads(mlp64, x, y))
    np.testing.assert_allclose(fs.full_grad(fs.x0), G.mean(0), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(fs.per_example_grads(fs.x0), G, rtol=1e-10, atol=1e-13 * np.abs(G).max())
    back = fs.unravel(fs.x0 + 1.0)
    assert isinstance(back, eqx.nn.MLP)
    np.testing.assert_allclose(back.layers[1].bias, mlp64.layers[1].bias + 1.0)
    # sdesim's own batch-level models go through the same constructor
    tiny = nn.tiny_fc(jax.random.PRNGKey(1), n_classes=10, dtype=jnp.float64)
    xi = digits.x_train[:30].reshape(30, 1, 7, 7)
    fs_t = C.FiniteSum.from_model(tiny, xi, y[:30])
    np.testing.assert_allclose(fs_t.full_grad(fs_t.x0), nn.full_gradient(tiny, xi, y[:30]), rtol=1e-10, atol=1e-15)
    assert isinstance(fs_t.unravel(fs_t.x0), nn.Sequential)

    # the three kernels, a few float32 steps each, on the float32 network
    fs32 = C.FiniteSum.from_model(_mlp(jnp.float32), x, y)
    lr, b = 0.05, 20
    kernels = [
        C.sgd(fs32, lr, b),
        C.sgld(fs32, lr, b, noise_power=fs32.noise_power(fs32.x0)),
        C.sde(fs32.problem(), lr, b),
    ]
    for ker in kernels:
        ens = C.run_chains(ker, fs32.x0, n_chains=2, n_steps=3, save_every=1, seed=0)
        assert ens.x.shape == (3, 2, 970) and np.all(np.isfinite(ens.x)), ker.name
        assert ens.n_diverged == 0 and not np.allclose(ens.x[-1, 0], fs32.x0), ker.name
        assert ker.beta_inv == pytest.approx(lr / (2 * b))
        assert np.all(np.isfinite(nn.per_example_loss(fs32.unravel(jnp.asarray(ens.x[-1, 0])), x, y)))


def test_wrong_inputs_raise_one_clear_error(digits):
    mlp = _mlp(jnp.float64)
    x, y = digits.x_train[:40], digits.y_train[:40]
    G = np.asarray(nn.per_example_grads(mlp, x, y))  # (40, 970)
    # gradient matrix the wrong way round, with the number of examples known
    with pytest.raises(ValueError, match=r"^grads: .*pass grads\.T"):
        nn.diffusion_spectrum(G.T, n_examples=40)
    with pytest.raises(ValueError, match=r"^grads: .*pass grads\.T"):
        nn.diffusion_spectrum(G.T, x, y)
    with pytest.raises(ValueError, match="^grads: has 30 rows"):
        nn.diffusion_spectrum(G[:30], n_examples=40)
    with pytest.raises(ValueError, match="^n_examples"):
        nn.diffusion_spectrum(mlp, x, y, n_examples=41)
    with pytest.raises(ValueError, match="^loss"):
        nn.diffusion_spectrum(G, loss=nn.CrossEntropyLoss())
    # a bare matrix with more rows than columns is a valid (N, d) matrix
    assert nn.diffusion_spectrum(G.T, top_k=0).n_examples == 970
    with pytest.raises(ValueError, match="^unravel"):
        nn.diffusion_spectrum(G, top_k=1).eigvec_tree(0)
    # images where the MLP takes vectors: the fix is named
    with pytest.raises(ValueError, match=r"^x: .*\(1, 7, 7\).*reshape"):
        nn.per_example_grads(mlp, x.reshape(40, 1, 7, 7), y)
    with pytest.raises(ValueError, match="^data.x_train"):
        nn.train(mlp, nn.load_digits(classes=10, size=7), epochs=1)
    with pytest.raises(ValueError, match="^y: labels must lie in 0..9"):
        nn.per_example_grads(mlp, x, y + 10)
    with pytest.raises(ValueError, match="^y: "):
        nn.per_example_grads(mlp, x, y[:5])
    with pytest.raises(ValueError, match="^model"):
        nn.per_example_grads("mlp", x, y)

    # a batched loss where a per-example one is expected
    def batched(model, xb, yb):
        logits = jax.vmap(model)(xb)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1)[:, 0]

    with pytest.raises(ValueError, match="^loss: "):
        nn.per_example_grads(mlp, x, y, loss=batched)
    with pytest.raises(ValueError, match="^loss: "):
        C.FiniteSum.from_model(mlp, x, y, loss=batched)
    with pytest.raises(ValueError, match="^loss: returned shape \\(2,\\) for one example"):
        nn.per_example_grads(mlp, x, y, loss=lambda m, xi, yi: jnp.stack([m(xi)[yi], m(xi)[0]]))
    with pytest.raises(ValueError, match="^loss"):
        nn.train(nn.tiny_fc(jax.random.PRNGKey(0), n_classes=10), nn.load_digits(size=7), epochs=1,
                 loss=lambda m, xi, yi: jnp.sum(m(xi)))
    with pytest.raises(ValueError, match="^optimizer"):
        nn.train(mlp, digits, epochs=1, optimizer="adam")

    # FiniteSum with a hand-written flat loss: wrong dim, batched loss
    params, static = eqx.partition(mlp, eqx.is_inexact_array)
    w0, unravel = ravel_pytree(params)

    def flat_loss(w, xi, yi):
        return -jax.nn.log_softmax(eqx.combine(unravel(w), static)(xi))[yi]

    data = (jnp.asarray(x), jnp.asarray(y))
    assert C.FiniteSum(flat_loss, data, 970).dim == 970
    with pytest.raises(ValueError, match=r"^dim: the loss's parameter vector has size 970, got dim=7$"):
        C.FiniteSum(flat_loss, data, 7)

    def flat_batched(w, xb, yb):
        logits = jax.vmap(eqx.combine(unravel(w), static))(xb)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=1)[:, 0]

    with pytest.raises(ValueError, match="^loss: .*pass vectorized=True or a per-example loss"):
        C.FiniteSum(flat_batched, data, 970)
    assert C.FiniteSum(flat_batched, data, 970, vectorized=True).n_data == 40
    with pytest.raises(ValueError, match="^unravel"):
        C.FiniteSum(flat_loss, data, 970).unravel(w0)
