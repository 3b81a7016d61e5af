"""Checkpoint/resume: a run killed with SIGKILL resumes to bit-identical arrays."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

CFG = """
[problem]
kind = "rotating_double_well"
lam = 1.5
[simulation]
form = ["ito", "atype"]
n_particles = 2000
n_steps = 4000
dt = 0.01
seed = 9
save_every = 100
burn_in = 300
checkpoint_every = 100
[output]
figure = false
"""


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "sdesim.cli", "run", *args, "--quiet"],
                          capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    cfg = d / "c.toml"
    cfg.write_text(textwrap.dedent(CFG))
    r = _run([str(cfg), "--out", str(d / "run")])
    assert r.returncode == 0, r.stderr
    return cfg, d / "run"


def _kill_after_checkpoint(cfg, out, form="atype", min_checkpoints=1):
    proc = subprocess.Popen([sys.executable, "-m", "sdesim.cli", "run", str(cfg), "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / f"checkpoint_{form}.npz"
    t0 = time.time()
    seen = 0
    last = None
    while time.time() - t0 < 300:
        if ckpt.exists():
            m = ckpt.stat().st_mtime_ns
            if m != last:
                seen += 1
                last = m
            if seen >= min_checkpoints:
                break
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists() and not (out / "summary.json").exists(), "run finished before it could be killed"


def test_kill_and_resume_is_bit_identical(reference, tmp_path):
    cfg, ref = reference
    out = tmp_path / "run"
    _kill_after_checkpoint(cfg, out, form="atype", min_checkpoints=3)
    assert (out / "form_ito.json").exists()  # the first form had finished
    r = _run(["--out", str(out), "--resume"])
    assert r.returncode == 0, r.stderr
    for form in ("ito", "atype"):
        with h5py.File(ref / f"ensemble_{form}.h5") as a, h5py.File(out / f"ensemble_{form}.h5") as b:
            np.testing.assert_array_equal(a["x"][...], b["x"][...])
    assert not list(out.glob("checkpoint_*")) and not list(out.glob("*.partial.npy"))


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_corrupted_checkpoint_is_reported_not_loaded(reference, tmp_path, damage):
    cfg, _ = reference
    out = tmp_path / "run"
    _kill_after_checkpoint(cfg, out, form="ito")
    ck = out / "checkpoint_ito.npz"
    data = ck.read_bytes()
    ck.write_bytes(b"not a checkpoint" if damage == "garbage" else data[: len(data) // 2])
    r = _run(["--out", str(out), "--resume"])
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: checkpoint:") and "Traceback" not in r.stderr


def test_checkpoint_checksum_detects_altered_state(tmp_path):
    from sdesim.cli import CheckpointError, load_checkpoint, save_checkpoint

    p = tmp_path / "c.npz"
    save_checkpoint(p, dict(x=np.ones((3, 2), np.float32), chunk_start=0, piece=1, step=10, k=0))
    assert load_checkpoint(p)["step"] == 10
    with np.load(p) as z:
        x, meta = z["x"].copy(), z["meta"]
    x[0, 0] = 2.0
    with open(p, "wb") as fh:
        np.savez(fh, x=x, meta=meta)
    with pytest.raises(CheckpointError, match="^checkpoint"):
        load_checkpoint(p)


def test_resume_requires_a_run(tmp_path):
    r = _run(["--out", str(tmp_path / "none"), "--resume"])
    assert r.returncode == 2 and r.stderr.startswith("error: out:")
