"""Every shipped example config validates and runs in --quick mode, with its numbers sanity-checked."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from sdesim.cli import experiment_kind, load_config
from sdesim.cli import app

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 6
    assert {experiment_kind(load_config(c)) for c in CONFIGS} == {"ensemble", "toy2d", "longrun"}


def _check_ensemble(s, out):
    assert s["mean"] is not None


def _check_toy2d(s, out):
    # SGD's stationary law is its SDE's (TV at the sampling floor of these histograms), not Langevin's
    assert s["tv_sgd_sde"] < 1.5 * s["tv_floor"], s
    assert s["tv_sgd_langevin"] > 2.0 * s["tv_sgd_sde"] and s["tv_sgd_langevin"] > 0.3, s
    # for least squares E x = argmin f exactly, also for discrete SGD
    se = np.sqrt(np.diag(s["cov"]) / s["n_chains"])
    assert np.all(np.abs(np.subtract(s["mean"], s["x_star"])) < 5 * se), s
    assert s["beta_inv"] == pytest.approx(0.02)
    with h5py.File(out / "toy2d.h5") as f:
        assert f["sgd/x"].shape == (10, 400, 2) and json.loads(f.attrs["config"])["experiment"]["kind"] == "toy2d"
        np.testing.assert_allclose(f["sgd/hist"][...].sum(), 1.0, rtol=1e-12)
        assert f.attrs["seed"] == 0 and "jax" in json.loads(f.attrs["versions"])
    assert (out / "toy2d.png").exists()


def _check_longrun(s, out):
    assert s["epochs_done"] == 60 and s["steps_per_epoch"] == 721 // 32
    sgd = s["kernels"]["sgd"]
    assert sgd["n_chains"] == 1 and s["kernels"]["sgld"]["n_chains"] == 1
    # SGD keeps training: loss well below its value after burn-in, accuracy far above chance (1/5)
    assert sgd["train_loss"][0] < 0.8 * s["train_loss_after_burn_in"][0], s
    assert sgd["train_accuracy"][0] > 0.5 and sgd["val_accuracy"][0] > 0.5, s
    # its weight increments are not white: low-frequency power far above the Brownian level (R = 1)
    assert sgd["low_frequency_R"][0] > 10 and sgd["low_frequency_p"][0] < 1e-6, s
    with h5py.File(out / "longrun_sgd.h5") as f:
        assert f["x"].shape == (60, 1, 917) and f["grad_norm"].shape == (60, 1)
        np.testing.assert_allclose(f["grad_norm"][-1], sgd["grad_norm_last"])
        np.testing.assert_array_equal(f["x"][-1], f["w_final"][...])
        w = f["x"][-1, 0]
    # the summary's loss is the chains' f at the final weights (the model is rebuilt, not copied)
    from sdesim import experiments

    fs, _, _ = experiments.digits_finite_sum(0)
    assert sgd["train_loss"][0] == pytest.approx(float(fs.value(w)), rel=1e-4)
    assert (out / "longrun.png").exists()


CHECKS = {"ensemble": _check_ensemble, "toy2d": _check_toy2d, "longrun": _check_longrun}


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_runs_quick(cfg, tmp_path):
    out = tmp_path / "o"
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(out), "--quick", "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    assert s["n_diverged"] == 0 and s["config"] and s["versions"]
    assert (out / "run.log").exists() and (out / "config.json").exists()
    CHECKS[experiment_kind(s["config"])](s, out)
