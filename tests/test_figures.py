"""``sdesim figures --quick`` end to end: every figure script runs and writes what its figure shows.

One CLI run (a fresh process, as a user would start it) writes every
``<name>_quick.{png,pdf,json}`` into a temporary directory -- never into the
repository's ``figures/``. The checks below then read each JSON: provenance
(``runtime_s``, ``argv``, ``versions``), every number finite, and the numbers
each figure displays within sensible ranges. Quick runs are small, so the
ranges are wide; the statistics are pinned by the full-size figures and the
unit tests, not here.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: figure module -> the file stem it writes (a new sdesim.experiments.figures.fig_* must be added here, with checks)
FIGURES = {
    "fig_diffusion_spectrum": "diffusion_spectrum",
    "fig_free_energy": "free_energy",
    "fig_limit_cycles": "fig4_limit_cycles",
    "fig_longrun": "longrun",
    "fig_mnist_spectrum": "mnist_spectrum",
    "fig_mode_shift": "mode_shift",
    "fig_network_current": "network_current",
    "fig_potential": "potential",
    "fig_replacement": "replacement",
    "fig_sgd_vs_langevin": "sgd_vs_langevin_2d",
    "fig_spectra": "spectra",
    "fig_zero_mass": "zero_mass",
}


def _finite(x, path="") -> list:
    """Paths of non-finite numbers in a nested JSON value."""
    if isinstance(x, dict):
        return [p for k, v in x.items() for p in _finite(v, f"{path}.{k}")]
    if isinstance(x, list):
        return [p for i, v in enumerate(x) for p in _finite(v, f"{path}[{i}]")]
    if isinstance(x, (bool, str)) or x is None:
        return []
    return [] if math.isfinite(x) else [path]


def test_every_figure_is_covered():
    from sdesim.experiments import figure_names

    assert set(figure_names()) == set(FIGURES), "add new figures (and checks of their numbers) to tests/test_figures.py"
    # every figure keeps its thin wrapper in scripts/
    assert {p.stem for p in (REPO / "scripts").glob("fig_*.py")} == set(FIGURES)


def test_quick_run_writes_nothing_into_the_repository(quick_figures):
    out, stdout, t_start = quick_figures
    assert f"figures: {len(FIGURES)}/{len(FIGURES)}" in stdout
    written = [p.name for p in (REPO / "figures").glob("*_quick.*") if p.stat().st_mtime >= t_start]
    assert not written, f"--out ignored: {written}"
    assert not (REPO / "runs" / "longrun_quick").exists() or (REPO / "runs" / "longrun_quick").stat().st_mtime < t_start


@pytest.mark.parametrize("script", sorted(FIGURES))
def test_outputs_and_provenance(quick_figures, script):
    out = quick_figures[0]
    stem = FIGURES[script] + "_quick"
    for ext in ("png", "json"):  # quick runs write no PDF
        f = out / f"{stem}.{ext}"
        assert f.exists() and f.stat().st_size > 1000, f
    assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = json.loads((out / f"{stem}.json").read_text())
    assert d["quick"] is True
    assert 0 < d["runtime_s"] < 600
    assert d["argv"][0] == f"sdesim/experiments/figures/{script}.py" and "--quick" in d["argv"]
    assert d["versions"]["jax"] and d["generated_utc"].endswith("Z")
    bad = [p for p in _finite(d) if not (p.startswith(".shuffle_rows[") and p.endswith(".exact_discrete"))]
    assert not bad, f"non-finite numbers in {stem}.json: {bad[:10]}"  # (no exact discrete chain for shuffling)


def _load(quick_figures, name):
    return json.loads((quick_figures[0] / f"{name}_quick.json").read_text())


def test_diffusion_spectrum_numbers(quick_figures):
    d = _load(quick_figures, "diffusion_spectrum")
    for model, variants in d["results"].items():
        assert set(variants) == {"digits10", "digits5", "digits10-aug"}
        for v, e in variants.items():
            assert set(e["checkpoints"]) == {"20", "40", "100"}
            for row in e["checkpoints"].values():
                assert 0 < row["rank_percent"] <= 100 * (d["config"]["n_spectrum"] - 1) / e["d"] + 1e-9
                assert row["eig_mean"] > 0 and row["eig_std"] > 0
                assert 0 <= row["train_accuracy"] <= 1
    assert d["results"] and set(d["remark14"]) == set(d["results"])  # quick: small-fc only


def test_mnist_spectrum_numbers(quick_figures):
    d = _load(quick_figures, "mnist_spectrum")  # invariants in detail: tests/test_fig_mnist_spectrum.py
    e = d["results"]["small-fc"]  # quick: small-fc only
    assert set(e["checkpoints"]) == {"20", "40", "100"} and e["d"] == 8266
    for row in list(e["checkpoints"].values()) + list(e["vs_n"].values()) + list(d["vs_d"].values()):
        assert 0 < row["rank"] <= row["rank_bound"]
        assert abs(row["eig_mean"] - row["trace_check"]) <= 1e-9 * row["eig_mean"]
    assert set(d["verdict"]) == {"small-fc"}


def test_free_energy_numbers(quick_figures):
    d = _load(quick_figures, "free_energy")
    F, Ffp = d["F_particles"], d["F_fokker_planck"]
    assert len(F) == len(Ffp) == len(d["t"]) >= 5
    assert F[0] > F[-1] > d["F_eq"] - 0.05  # decays towards F_eq from above
    assert abs(d["F_eq"] - d["F_eq_grid"]) < 0.01
    assert d["max_abs_particles_minus_fp"] < 0.1
    assert d["monotone_within_3se"]


def test_limit_cycles_numbers(quick_figures):
    d = _load(quick_figures, "fig4_limit_cycles")
    assert set(d["lam"]) == {"0.0", "0.5", "1.5"}
    for lam, e in d["lam"].items():
        c = e["current"]
        assert c["angular_velocity_exact"] == pytest.approx(float(lam) * math.pi**1.5 / 7.62347, rel=1e-4)
        assert abs(c["angular_velocity"] - c["angular_velocity_exact"]) < 6 * c["angular_velocity_stderr"] + 0.05
        assert c["angular_velocity_stderr"] > 0
    assert d["lam"]["0.0"]["trace_drift"]["counts"]["fixed_point"] == d["lam"]["0.0"]["trace_drift"]["n"]
    assert d["lam"]["1.5"]["trace_drift"]["counts"]["cycle"] == 0  # a weak focus, not a limit cycle
    j = d["j_flow_lam1.5"]
    assert all(s == "cycle" for s in j["status"])
    assert j["period"] == pytest.approx(j["period_quadrature_at_traced_radius"], rel=1e-6)
    assert -0.7 < d["drift_lam1.5_radius_decay"]["slope_100_to_T"] < -0.3  # r ~ t^(-1/2)


def test_longrun_numbers(quick_figures):
    d = _load(quick_figures, "longrun")
    assert set(d["kernels"]) == {"sgd", "sgld"}
    for k in d["kernels"].values():
        n = k["n_chains"]
        assert k["epochs"] > 10 and n >= 1
        for key in ("low_frequency_R", "low_frequency_p", "periodicity_g", "acf_lag100_mean", "grad_norm_drop"):
            assert len(k[key]) == n
        assert all(r > 0 for r in k["low_frequency_R"])
        assert all(0 <= p <= 1 for p in k["low_frequency_p"] + k["periodicity_p"])
        assert all(0 <= g <= 1 for g in k["periodicity_g"])
        assert all(-1 <= a <= 1 for a in k["acf_lag100_mean"])
        assert all(g > 0 for g in k["grad_norm_last"])


def test_mode_shift_numbers(quick_figures):
    d = _load(quick_figures, "mode_shift")
    t = d["toy"]
    assert -1.2 < t["fit_shift_equals_s1_b_plus_s2_b2"]["s1"] < -0.5  # full size: -0.825
    assert all(s < 0 for s in t["fp_shift_x1"])
    for p in t["particles"]:
        assert 0.6 < p["mode"][0] < 1.0 and 0 < p["stderr"][0] < 0.1
    # every temperature's right-well mode rises above the discretisation-error threshold on this grid
    assert t["beta_inv_not_resolved_on_grid"] == [] and len(t["fp_mode"]) == len(t["beta_inv"]) >= 3
    assert all(p > th for p, th in zip(t["fp_mode_prominence"], t["fp_mode_prominence_threshold"]))
    a = d["anisotropic"]
    assert max(abs(v) for v in a["fp_mode_at_0.5_minus_argmin_phi"]) < 0.02
    assert all(p > th for p, th in zip(a["fp_mode_prominence"], a["fp_mode_prominence_threshold"]))


def test_potential_numbers(quick_figures):
    d = _load(quick_figures, "potential")
    e = d["exact_phi"]
    assert e["bins_in_bulk"] > 100
    assert 0.6 < e["chi2_per_dof"] < 1.6
    assert 0.85 < e["fraction_within_2se"] <= 1
    # two wells, each rising above the threshold set by the KDE's bootstrap standard errors
    assert len(e["modes"]) == 2
    assert all(p > th for p, th in zip(e["mode_prominence"], e["mode_prominence_threshold"]))
    for ex in e["exact_minima_phi"]:
        assert min(abs(m[0] - ex[0]) for m in e["modes"]) < 0.1
    f = d["phi_vs_f"]
    assert len(f["fp_modes"]) == 2  # one per well of Phi (exact FP)
    assert all(p > th for p, th in zip(f["fp_mode_prominence"], f["fp_mode_prominence_threshold"]))
    assert 0.1 < f["tv_fp_vs_gibbs_f"] < 0.5  # full size: 0.28
    assert 0.3 < f["particle_marginal_vs_fp_chi2_per_dof"] < 3


def test_replacement_numbers(quick_figures):
    d = _load(quick_figures, "replacement")
    assert d["rows"] and d["linear_scaling"]
    for r in d["rows"]:
        assert 0 < r["measured_ratio"] < 1.2 and r["stderr"] > 0
        assert abs(r["z_vs_exact_factor"]) < 6
        assert r["exact_factor"] == pytest.approx((r["n_data"] - r["batch"]) / (r["n_data"] - 1))
    for r in d["linear_scaling"]:
        assert r["trace"] > 0 and r["trace_exact"] > 0 and abs(r["trace"] - r["trace_exact"]) < 6 * r["stderr"]


def test_sgd_vs_langevin_numbers(quick_figures):
    d = _load(quick_figures, "sgd_vs_langevin_2d")
    for k in ("tv_sgd_sde", "tv_sgd_langevin", "tv_sde_exact", "tv_sgd_exact", "tv_floor", "tv_exact_sde_langevin"):
        assert 0 <= d[k] <= 1, k
    assert d["tv_sgd_langevin"] > 2 * d["tv_sgd_sde"]  # full size: 0.50 vs 0.028
    assert 0.4 < d["tv_exact_sde_langevin"] < 0.6
    assert d["mode_shift"] < 0.1 and d["beta_inv"] == pytest.approx(0.02)
    for k in ("sgd", "sde", "sgld"):
        assert d["mean"][k] == pytest.approx(d["x_star"], abs=0.02)


def test_spectra_numbers(quick_figures):
    d = _load(quick_figures, "spectra")
    pr = d["processes"]
    assert len(pr) == 5
    for e in pr.values():
        for t in ("low_frequency", "periodicity"):
            assert 0 <= e[t]["p_value"] <= 1
        assert -1 <= e["acf_lag1"] <= 1 and e["white_level"] > 0
    bm = pr["Brownian motion"]
    assert bm["low_frequency"]["p_value"] > 1e-3  # the null
    rot = next(v for k, v in pr.items() if k.startswith("noisy rotation"))
    assert rot["periodicity"]["p_value"] < 1e-6 and rot["periodicity"]["f_peak"] == pytest.approx(rot["f0"], abs=0.02)


def test_zero_mass_numbers(quick_figures):
    d = _load(quick_figures, "zero_mass")
    for p in d["linear"]["points"]:
        assert abs(p["L"] - p["exact"]) < 5 * p["stderr"] + 0.01
    s = d["state_dependent"]
    assert 0.13 < s["L0_atype_fokker_planck"] < 0.17  # full size (128 cells): 0.1507
    assert abs(s["L0_atype_euler_particles"][0] - s["L0_atype_fokker_planck"]) < 5 * s["L0_atype_euler_particles"][1] + 0.01
    for e in s["exact_at_every_m"]:
        v, se = e["m_v2_over_2beta_inv"]
        assert abs(v - 1) < 5 * se + 0.02
    n = d["naive"]
    assert 0.01 < n["tv_exact_vs_naive_fp"] < 0.1 and n["E_x2_naive_fp"] < 0


def test_network_current_numbers(quick_figures):
    d = _load(quick_figures, "network_current")
    net = d["network"]
    assert net["minimum"]["status"] == "minimum" and net["minimum"]["hessian_min_eigenvalue"] > 0
    assert all(abs(z) < 5 for z in net["A"]["max_current"]["sgld"]["z_vs_zero"])  # tests/test_network_current.py: 4
    assert max(abs(z) for z in net["A"]["max_current"]["sgd"]["z_vs_zero"]) > 4
