import pytest

import sdesim


def test_temperature_values():
    assert sdesim.temperature(0.1, 10) == pytest.approx(0.005)
    assert sdesim.temperature(0.1, 10, n_data=100) == pytest.approx(0.005)
    assert sdesim.temperature(0.1, 10, n_data=100, replacement=False) == pytest.approx(0.005 * 0.9)
    assert sdesim.temperature(0.1, 100, n_data=100, replacement=False) == 0.0


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
