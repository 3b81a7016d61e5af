"""sdesim.nn models and training: weight counts, evaluation mode, batch-norm,
dropout, optax SGD + Nesterov, schedules, checkpoints."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sdesim.nn as nn


def test_weight_counts_match_hand_counts():
    k = jax.random.PRNGKey(0)
    # Linear(49,16)+BN(16)+Linear(16,5)
    assert nn.n_weights(nn.tiny_fc(k)) == 49 * 16 + 16 + 2 * 16 + 16 * 5 + 5 == 917
    assert nn.n_weights(nn.small_fc(k)) == 64 * 64 + 64 + 2 * 64 + 64 * 10 + 10 == 4938
    # conv 1->8 3x3, BN 8, conv 8->16 3x3, BN 16, FC 64->128, FC 128->10
    lenet = 8 * 9 + 8 + 16 + 16 * 8 * 9 + 16 + 32 + 64 * 128 + 128 + 128 * 10 + 10
    assert nn.n_weights(nn.small_lenet(k)) == lenet == 10906
    assert "total weights d = 10906" in nn.describe(nn.small_lenet(k))
    assert nn.n_weights(nn.small_fc(k, hidden=(64, 64))) == 4938 + 64 * 64 + 64 + 128
    with pytest.raises(ValueError, match="name"):
        nn.make_model("resnet", k, image_shape=(1, 8, 8), n_classes=10)
    with pytest.raises(ValueError, match="in_shape"):
        nn.small_lenet(k, in_shape=(1, 3, 3))


def test_paper_scale_mnist_models():
    k = jax.random.PRNGKey(0)
    # conv 1->8 5x5, BN 8, conv 8->16 5x5, BN 16, FC 16*2*2->128, BN 128, FC 128->10: the paper's 13 338
    lenet = 8 * 25 + 8 + 16 + 16 * 8 * 25 + 16 + 32 + 64 * 128 + 128 + 256 + 128 * 10 + 10
    model = nn.small_lenet_mnist(k)
    assert nn.n_weights(model) == lenet == 13338
    # 28 -> conv5 24 -> pool3 8 -> conv5 4 -> pool2 2: evaluation-mode logits per example
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 1, 28, 28))
    out = model(x)
    assert out.shape == (3, 10)
    np.testing.assert_allclose(out[1:2], model(x[1:2]), rtol=1e-5, atol=1e-6)
    # two hidden layers of h on 7x7: 49 h + h + 2 h + h^2 + h + 2 h + 10 h + 10
    for h in (8, 64):
        assert nn.n_weights(nn.small_fc_mnist(k, hidden=h)) == h * h + 65 * h + 10
    assert nn.n_weights(nn.small_fc_mnist(k)) == 8266
    assert nn.small_fc_mnist(k)(jnp.zeros((2, 1, 7, 7))).shape == (2, 10)
    with pytest.raises(ValueError, match="hidden"):
        nn.small_fc_mnist(k, hidden=0)
    with pytest.raises(ValueError, match="dropout"):
        nn.small_lenet_mnist(k, dropout=1.0)
    with pytest.raises(ValueError, match="channels"):
        nn.small_lenet_mnist(k, channels=(8, -1))


def test_eval_mode_is_per_example_and_train_mode_is_not():
    k = jax.random.PRNGKey(1)
    model = nn.small_lenet(k)
    x = jax.random.normal(jax.random.PRNGKey(2), (6, 1, 8, 8))
    ev = eqx.filter_jit(lambda m, x: m(x))
    tr = eqx.filter_jit(lambda m, x, k: m.forward_train(x, k))
    full = ev(model, x)
    single = jnp.concatenate([ev(model, x[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(full, single, rtol=1e-5, atol=1e-6)
    # training mode: batch statistics couple the examples, dropout is random
    l1, m1 = tr(model, x, jax.random.PRNGKey(3))
    l2, _ = tr(model, x, jax.random.PRNGKey(4))
    assert not np.allclose(l1, l2)
    # running statistics move by momentum 0.1 towards the batch statistics
    h = model.layers[0](x.astype(jnp.float32))[0]
    bn = m1.layers[1]
    np.testing.assert_allclose(bn.stats.mean, 0.1 * h.mean(axis=(0, 2, 3)), rtol=1e-4, atol=1e-6)
    n = 6 * 8 * 8
    np.testing.assert_allclose(bn.stats.var, 0.9 + 0.1 * h.var(axis=(0, 2, 3)) * n / (n - 1), rtol=1e-4)
    # running statistics are buffers, not weights
    assert nn.n_weights(m1) == nn.n_weights(model)
    with pytest.raises(ValueError, match="key"):
        nn.Dropout(0.5)(x, train=True)


def test_batchnorm_train_mode_normalises():
    bn = nn.BatchNorm(3)
    x = jax.random.normal(jax.random.PRNGKey(0), (50, 3)) * jnp.array([1.0, 5.0, 0.2])[None, :] + 2.0
    y, _ = bn(x, train=True)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1.0, rtol=1e-3)


def test_lr_schedules():
    s = nn.lr_schedule(0.1, 100, "step")
    np.testing.assert_allclose([s(0), s(49), s(50), s(74), s(75), s(99)], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    c = nn.lr_schedule(0.1, 100, "cosine")
    np.testing.assert_allclose([c(0), c(50), c(100)], [0.1, 0.05, 0.0], atol=1e-7)
    assert float(nn.lr_schedule(0.1, 10, "constant")(7)) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="schedule"):
        nn.lr_schedule(0.1, 10, "linear")


def test_train_digits_checkpoints_and_roundtrip(tmp_path):
    data = nn.load_digits(classes=5, size=7)
    model = nn.tiny_fc(jax.random.PRNGKey(0))
    run = nn.train(model, data, epochs=10, batch_size=32, lr=0.05, checkpoint_dir=str(tmp_path))
    assert [c.fraction for c in run.checkpoints] == [0.2, 0.4, 1.0]
    assert [c.epoch for c in run.checkpoints] == [2, 4, 10]
    assert run.checkpoints[-1].step == 10 * (data.n_train // 32)
    assert run.history["val_accuracy"][-1] > 0.9
    assert run.history["train_loss"][-1] < run.history["train_loss"][0]
    assert nn.accuracy(run.model, data.x_val, data.y_val) == pytest.approx(run.history["val_accuracy"][-1])
    back = nn.load_checkpoint(str(tmp_path / "ckpt_040.eqx"), model)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(run.checkpoints[1].model)):
        np.testing.assert_array_equal(a, b)
    # checkpoints differ from each other (training moved the weights)
    w = [nn.flat_weights(c.model)[0] for c in run.checkpoints]
    assert float(jnp.linalg.norm(w[2] - w[0])) > 0
    with pytest.raises(ValueError, match="batch_size"):
        nn.train(model, data, epochs=1, batch_size=10**6)
    with pytest.raises(ValueError, match="checkpoints"):
        nn.train(model, data, epochs=1, checkpoints=(0.0,))
    with pytest.raises(FileNotFoundError, match="nope"):
        nn.load_checkpoint(str(tmp_path / "nope.eqx"), model)


def test_nesterov_step_matches_hand_update():
    """One optax step from zero momentum: x1 = x0 - lr (1 + mu) g (Nesterov)."""
    data = nn.load_digits(classes=2, size=7, val_fraction=0.0)
    model = nn.Sequential((nn.Flatten(), nn.Linear(49, 2, key=jax.random.PRNGKey(0))), "lin")
    b = data.n_train
    run = nn.train(model, data, epochs=1, batch_size=b, lr=0.1, schedule="constant", checkpoints=(1.0,))
    g = nn.full_gradient(model, data.x_train, data.y_train)
    w0, w1 = nn.flat_weights(model)[0], nn.flat_weights(run.model)[0]
    np.testing.assert_allclose(w1, w0 - 0.1 * 1.9 * g, rtol=1e-4, atol=1e-6)
