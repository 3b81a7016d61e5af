"""``sdesim run`` for chain experiments: resume of the long run, refusals for the toy and for a used directory."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

from sdesim.cli import app, load_config, quick_config, run_chains_experiment

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
runner = CliRunner()


class _Interrupt(RuntimeError):
    """Stands for Ctrl-C / a kill between two committed chunks."""


def _arrays(out: Path, kernel: str) -> dict:
    with h5py.File(out / f"longrun_{kernel}.h5") as f:
        return {k: f[k][...] for k in ("x", "grad_norm", "w_final")}


def test_longrun_interrupted_then_resumed_is_identical(tmp_path):
    cfg = str(CONFIGS / "tiny_fc_longrun.toml")
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    assert runner.invoke(app, ["run", cfg, "--out", str(ref), "--quick", "--quiet"]).exit_code == 0

    def stop_after_first_chunk(done, total):
        raise _Interrupt(f"interrupted after chunk {done}/{total}")

    # what `sdesim run CONFIG --out cut --quick --quiet` runs, stopped by its on_chunk callback
    with pytest.raises(_Interrupt):
        run_chains_experiment(quick_config(load_config(cfg)), cut, quiet=True, on_chunk=stop_after_first_chunk)
    assert not (cut / "summary.json").exists()
    assert "stream: chunk 1/3 committed" in (cut / "run.log").read_text()  # logged before on_chunk is called
    with np.load(cut / "stream" / "sgd" / "checkpoint.npz") as ck:
        assert int(ck["chunks_done"]) == 1  # of 3 (60 epochs in 20-epoch chunks); SGLD not started
    assert not (cut / "stream" / "sgld").exists()

    # a plain re-run refuses the used directory; --resume (config from DIR/config.json) continues it
    r = runner.invoke(app, ["run", cfg, "--out", str(cut), "--quick", "--quiet"])
    assert r.exit_code == 2 and r.output.startswith("error: out:")
    r = runner.invoke(app, ["run", "--out", str(cut), "--resume", "--quiet"])
    assert r.exit_code == 0, r.output
    for kernel in ("sgd", "sgld"):
        a, b = _arrays(ref, kernel), _arrays(cut, kernel)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{kernel}/{k}")
    s_ref = json.loads((ref / "summary.json").read_text())
    s_cut = json.loads((cut / "summary.json").read_text())
    assert s_cut["resumed"] and not s_ref["resumed"]
    assert s_cut["kernels"]["sgd"]["train_loss"] == s_ref["kernels"]["sgd"]["train_loss"]
    assert "resume longrun" in (cut / "run.log").read_text()


def test_toy2d_resume_is_refused(tmp_path):
    r = runner.invoke(app, ["run", str(CONFIGS / "sgd_toy2d.toml"), "--out", str(tmp_path / "o"), "--resume"])
    assert r.exit_code == 2 and r.output.startswith("error: resume:") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("name", ["sgd_toy2d", "tiny_fc_longrun"])
def test_chain_run_never_overwrites(tmp_path, name):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = runner.invoke(app, ["run", str(CONFIGS / f"{name}.toml"), "--out", str(out), "--quick", "--quiet"])
    assert r.exit_code == 2 and r.output.startswith("error: out:")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_python_api_raises_value_error():
    from sdesim import cli as config

    cfg = config.load_config(CONFIGS / "sgd_toy2d.toml")
    cfg["temperature"]["batch"] = 0
    with pytest.raises(ValueError, match=r"^temperature\.batch: must be >= 1"):
        config.validate_config(cfg)
