"""Scale-out paths: sharding over (fake) devices and in-loop reducers give the same numbers."""

import os

import jax
import numpy as np
import pytest

import sdesim
from _stats import assert_equal_to_rounding, near_bin_edges

needs4 = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (fake) devices: SDESIM_CPU_DEVICES=4")

BOX = [[-3.0, 3.0], [-3.0, 3.0]]


def test_fake_devices_present():
    n = int(os.environ.get("SDESIM_CPU_DEVICES", "4"))  # conftest fakes this many CPU devices
    assert len(jax.devices()) == n


@needs4
@pytest.mark.repro
@pytest.mark.parametrize("n", [4096, 5001])  # divisible and not divisible by the device count
def test_sharded_run_equals_single_device(n):
    p = sdesim.problems.rotating_double_well(1.5)
    kw = dict(beta_inv=1.0, n_particles=n, n_steps=60, dt=0.01, seed=7, save_every=20, burn_in=20)
    a = sdesim.simulate(p, devices=1, **kw)
    b = sdesim.simulate(p, devices=4, **kw)
    c = sdesim.simulate(p, devices=2, chunk_size=3000, **kw)
    # each device runs a narrower program: the same draws, equal to rounding (80 steps)
    assert_equal_to_rounding(a.x, b.x, 80)
    assert_equal_to_rounding(a.x, c.x, 80)


@pytest.mark.repro
def test_stats_reducers_equal_trajectory_statistics():
    p = sdesim.problems.anisotropic_double_well(0.5)
    kw = dict(beta_inv=0.5, n_particles=3000, n_steps=200, dt=0.01, seed=2, save_every=50, burn_in=100)
    a = sdesim.simulate(p, **kw)
    for devices, block in ((1, 8192), (min(4, len(jax.devices())), 1000)):
        s = sdesim.simulate(p, keep="stats", stats_bins=24, stats_box=BOX, devices=devices, block_size=block, **kw)
        assert s.x is None and s.stats["n"] == a.samples().shape[0]
        np.testing.assert_allclose(s.mean(), a.mean(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(s.cov(), a.cov(), rtol=1e-4, atol=1e-6)
        smp = a.samples()
        H, _, _ = np.histogram2d(smp[:, 0], smp[:, 1], bins=24, range=BOX)
        # another compiled program (in-loop reducers, other widths) rounds differently, so a
        # sample within rounding of a bin edge may land in the neighbouring bin (float32 x,
        # 300 steps of a few ulps); none may move further
        moved = np.abs(s.stats["hist"] - H.astype(np.int64)).sum()
        assert moved <= 2 * near_bin_edges(smp, BOX, 24, 300 * 64 * np.finfo(np.float32).eps * 3.0), moved
        with pytest.raises(ValueError, match="^samples"):
            s.samples()


def test_stats_mode_counts_diverged_particles():
    p = sdesim.problems.custom(lambda x: x**3, 1e-12, 1)
    x0 = np.array([[1.0], [2.5], [-0.5], [-3.0], [1.9]])
    e = sdesim.simulate(p, beta_inv=1e-12, n_particles=5, n_steps=40, dt=0.5, seed=0, x0=x0,
                        save_every=2, keep="stats")
    assert e.n_diverged == 2 and np.all(np.isfinite(e.mean()))
    np.testing.assert_array_equal(e.finite, [True, False, True, False, True])


@pytest.mark.parametrize(
    "override, field",
    [
        (dict(keep="all"), "keep"),
        (dict(keep="stats", stats_bins=10, stats_box=[[1, 0], [0, 1]]), "stats_box"),
        (dict(keep="stats", stats_bins=10, stats_box=[0, 1]), "stats_box"),
        (dict(devices=99), "devices"),
    ],
)
def test_scale_bad_input(override, field):
    p = sdesim.problems.rotating_double_well(1.0)
    with pytest.raises(ValueError, match=f"^{field}"):
        sdesim.simulate(p, beta_inv=1.0, n_particles=8, n_steps=4, dt=0.01, **override)


def test_low_rank_noise_in_high_dimension():
    """OU with D = U U^T + diag(s) in d = 2000, rank 20: per-coordinate variance matches.

    For grad f = x (F = I) the exact EM stationary covariance is
    2 beta^-1 dt D / (1 - (1 - dt)^2) = beta^-1 D / (1 - dt/2).
    """
    rng = np.random.default_rng(0)
    d, r = 2000, 20
    U = rng.normal(size=(d, r)) / np.sqrt(r)
    s = np.full(d, 0.05)
    noise = sdesim.diffusion.LowRankDiagonal(U, s)
    p = sdesim.problems.custom(lambda x: x, noise, d)
    e = sdesim.simulate(p, beta_inv=0.5, n_particles=400, n_steps=60, dt=0.1, seed=1, save_every=20, burn_in=60)
    x = e.x.astype(np.float64).reshape(-1, d)
    Dd = (U**2).sum(1) + s
    pred = 0.5 * Dd / (1 - 0.05)
    emp = x.var(axis=0)
    # relative error of a variance from n ~ 1200 Gaussian samples ~ sqrt(2/n); averaged over coordinates
    rel = emp / pred - 1
    assert abs(rel.mean()) < 4 * np.sqrt(2 / x.shape[0]) / np.sqrt(d) + 0.01
    # the low-rank correlation is there: top principal direction aligns with U's span
    C = np.cov(x[:, :200], rowvar=False)
    Cpred = 0.5 / 0.95 * (U[:200] @ U[:200].T + np.diag(s[:200]))
    assert np.linalg.norm(C - Cpred) / np.linalg.norm(Cpred) < 0.25


@pytest.mark.repro
def test_multi_process_slices_union_equals_single_process():
    """Each of P processes integrates its slice; concatenated they equal one process."""
    p = sdesim.problems.rotating_double_well(0.5)
    kw = dict(beta_inv=1.0, n_particles=1001, n_steps=40, dt=0.01, seed=4, save_every=20)
    full = sdesim.simulate(p, **kw)
    parts = [sdesim.simulate(p, process_index=i, process_count=3, **kw) for i in range(3)]
    assert [q.particle_offset for q in parts] == [0, 333, 667]
    assert_equal_to_rounding(np.concatenate([q.x for q in parts], axis=1), full.x, 40)


def test_two_real_processes_with_jax_distributed(tmp_path):
    """Two processes on loopback through jax.distributed == one process (bit for bit)."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).resolve().parent.parent / "scripts" / "distributed_run.py"
    procs = []
    for i in range(2):
        env = dict(os.environ, SDESIM_COORDINATOR=f"127.0.0.1:{port}", SDESIM_NUM_PROCESSES="2",
                   SDESIM_PROCESS_ID=str(i), XLA_FLAGS="--xla_force_host_platform_device_count=1")
        procs.append(subprocess.Popen([sys.executable, str(script), "--n-particles", "3001", "--n-steps", "40",
                                       "--save-every", "20", "--out", str(tmp_path)], env=env))
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0], codes
    parts = [np.load(tmp_path / f"part_{i}.npz") for i in range(2)]
    x = np.concatenate([q["x"] for q in parts], axis=1)
    full = sdesim.simulate(sdesim.problems.rotating_double_well(1.5), beta_inv=1.0, n_particles=3001,
                           n_steps=40, dt=0.01, seed=0, save_every=20)
    assert_equal_to_rounding(x, full.x, 40)
