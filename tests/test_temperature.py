import pytest

import sdesim


def test_temperature_values():
    assert sdesim.temperature(0.1, 10) == pytest.approx(0.005)
    assert sdesim.temperature(0.1, 10, n_data=100) == pytest.approx(0.005)
    assert sdesim.temperature(0.1, 10, n_data=100, replacement=False) == pytest.approx(0.005 * 0.9)
    assert sdesim.temperature(0.1, 100, n_data=100, replacement=False) == 0.0


def test_finite_population_conventions():
    """``"paper"`` (default) multiplies by 1 - b/N, ``"exact"`` by (N - b)/(N - 1); both 0 at b = N."""
    lr, b, N = 0.1, 10, 20
    base = lr / (2 * b)
    paper = sdesim.temperature(lr, b, N, replacement=False)
    assert paper == sdesim.temperature(lr, b, N, replacement=False, finite_population="paper")
    assert paper == pytest.approx(base * 0.5, rel=1e-15)
    exact = sdesim.temperature(lr, b, N, replacement=False, finite_population="exact")
    assert exact == pytest.approx(base * 10 / 19, rel=1e-15)
    assert exact / paper == pytest.approx(N / (N - 1), rel=1e-14)  # the O(1/N) gap
    for fp in ("paper", "exact"):
        assert sdesim.temperature(lr, N, N, replacement=False, finite_population=fp) == 0.0
        assert sdesim.temperature(lr, 1, 1, replacement=False, finite_population=fp) == 0.0
        assert sdesim.temperature(lr, b, N, finite_population=fp) == base  # with replacement: no factor
    with pytest.raises(ValueError, match="^finite_population"):
        sdesim.temperature(lr, b, N, replacement=False, finite_population="approx")


def test_one_definition_of_the_factor():
    """chains.sgd(subset) and nn.minibatch_covariance_factor report what sdesim.temperature gives."""
    import jax.numpy as jnp

    from sdesim import chains as C
    from sdesim import nn

    lr, b, N = 0.05, 4, 12
    fs = C.FiniteSum(lambda x, a: 0.5 * (a @ x) ** 2, (jnp.ones((N, 2)),), 2)
    exact = sdesim.temperature(lr, b, N, replacement=False, finite_population="exact")
    assert C.sgd(fs, lr, b, sampling="subset").beta_inv == exact
    assert C.sgd(fs, lr, b).beta_inv == sdesim.temperature(lr, b)
    assert C.subset_factor(N, b) * lr / (2 * b) == pytest.approx(exact, rel=1e-15)
    c = nn.minibatch_covariance_factor(b, N, replacement=False)
    assert c == pytest.approx(2 * exact / lr, rel=1e-15) and c == pytest.approx((N - b) / ((N - 1) * b))
    c_paper = nn.minibatch_covariance_factor(b, N, replacement=False, finite_population="paper")
    assert c_paper == pytest.approx(2 * sdesim.temperature(lr, b, N, replacement=False) / lr, rel=1e-15)
    assert nn.minibatch_covariance_factor(b, N) == 1 / b
    assert nn.minibatch_covariance_factor(2 * N, N) == 1 / (2 * N)  # with replacement b > N is fine


@pytest.mark.parametrize(
    "args, kwargs, field",
    [
        ((0.0, 10), {}, "lr"),
        ((-1.0, 10), {}, "lr"),
        ((float("nan"), 10), {}, "lr"),
        ((0.1, 0), {}, "batch"),
        ((0.1, 2.5), {}, "batch"),
        ((0.1, 20), dict(n_data=10), "batch"),
        ((0.1, 2), dict(n_data=0), "n_data"),
        ((0.1, 2), dict(replacement=False), "n_data"),
    ],
)
def test_temperature_errors(args, kwargs, field):
    with pytest.raises(ValueError, match=f"^{field}"):
        sdesim.temperature(*args, **kwargs)
