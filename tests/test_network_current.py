"""``fig_network_current --quick``: the JSON's structure and the invariants that can fail.

One quick run (a 49-2-10 tanh MLP on 100 real MNIST digits, 32 chains per
sampler) in a temporary directory. Checked:

* the minimum is a minimum (``|grad f| <= gtol``, smallest Hessian eigenvalue > 0);
* SGD, SGLD and the SDE run at the same ``beta^-1`` (``sdesim.temperature`` with
  the exact finite-population factor);
* SGLD's ``A(tau)_01`` in the max-current plane is within 4 s.e. of 0 at every
  lag (isotropic noise: no current), SGD's is more than 4 s.e. from 0 at
  some lag and agrees with the SDE's (same one-step mean and covariance) within 4
  combined s.e. at every lag;
* at the longest lag SGD's measured ``A`` agrees with the linearised discrete
  prediction within 4 s.e. (at lag 1 the quick model's nonlinearity is resolved
  and the test would be wrong, see docs/nonequilibrium.md);
* TV floors and cross TVs are in ``[0, 1]``;
* Example 19: the gradient-descent map has a closed curve whose radius is
  within 10 % of the normal-form law ``3.2327 sqrt(lr)``, and the noisy map's
  angular velocity is within 5 s.e. of the SDE's exact ``lam pi^{3/2}/Z``.
"""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("mlxtend")


@pytest.fixture(scope="module")
def quick(quick_figures):
    """The JSON of the session's ``sdesim figures --quick`` run (tests/conftest.py)."""
    return json.loads((quick_figures[0] / "network_current_quick.json").read_text())


def test_structure(quick):
    assert quick["quick"] is True
    net = quick["network"]
    assert set(net["A"]) == {"max_current", "pca", "top_D"}
    for plane in net["A"].values():
        for s in ("sgd", "sde", "sgld"):
            r = plane[s]
            n = len(net["lags_steps"])
            assert len(r["A01"]) == len(r["stderr"]) == len(r["predicted"]) == len(r["z_vs_zero"]) == n
            assert all(e > 0 for e in r["stderr"])
    assert set(net["stationarity"]) == {"sgd", "sde", "sgld"}
    for st in net["stationarity"].values():
        assert set(st) == {"full_weights", "max_current", "pca", "top_D"}
        assert all(v["rhat_max"] >= 1 - 1e-9 or v["rhat_max"] > 0.9 for v in st.values())
    assert [r["claim"] for r in quick["verdict"]]


def test_minimum_and_temperature(quick):
    net = quick["network"]
    m = net["minimum"]
    assert m["status"] == "minimum" and m["grad_norm"] <= m["gtol"]
    assert m["hessian_min_eigenvalue"] > 0
    s = net["sgd"]
    N, b, lr = net["data"]["n_data"], s["batch"], s["lr"]
    assert s["beta_inv"] == pytest.approx(lr / (2 * b) * (N - b) / (N - 1), rel=1e-12)
    assert 0 < s["lr_times_lambda_max"] < 2


def test_current_invariants(quick):
    A = quick["network"]["A"]["max_current"]
    sgd, sde, sgld = A["sgd"], A["sde"], A["sgld"]
    assert all(abs(z) < 4 for z in sgld["z_vs_zero"])
    assert max(abs(z) for z in sgd["z_vs_zero"]) > 4
    for a, ea, c, ec in zip(sgd["A01"], sgd["stderr"], sde["A01"], sde["stderr"]):
        assert abs(a - c) < 4 * math.hypot(ea, ec)
    assert abs(sgd["z_vs_prediction"][-1]) < 4
    assert all(p > 0 for p in A["predicted_discrete"])  # the plane is oriented so that A_01 > 0


def test_tv_floors(quick):
    for plane in quick["network"]["tv"].values():
        for v in plane["floor"].values():
            assert 0 <= v <= 1
        for v in plane["cross"].values():
            assert 0 <= v["tv"] <= 1 and v["floor_max"] >= 0


def test_example19(quick):
    e = quick["example19"]
    c = e["map_curve"]
    assert all(s == "cycle" for s in c["map_status"])
    for r in c["map_mean_radius"]:
        assert r == pytest.approx(c["normal_form_radius_law"], rel=0.2)
    for r in e["noisy_map"]["runs"]:
        assert r["exact_sde"] == pytest.approx(1.5 * math.pi**1.5 / 7.62347, rel=1e-4)
        assert abs(r["z_vs_exact"]) < 5
