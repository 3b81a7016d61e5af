"""The command line: default run, summary schema, and one-line errors for bad input."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from sdesim.cli import RunSummary, app

runner = CliRunner()

SMALL = """
[problem]
kind = "rotating_double_well"
lam = 0.5
[simulation]
form = ["ito", "atype"]
n_particles = 2000
n_steps = 200
dt = 0.02
seed = 3
save_every = 50
burn_in = 200
"""


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_run_small_config_writes_summary(tmp_path):
    cfg = _write(tmp_path, SMALL)
    out = tmp_path / "run"
    r = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    for key in ("mean", "cov", "n_diverged", "particle_steps_per_s", "config", "versions"):
        assert key in s
    assert len(s["mean"]) == 2 and np.shape(s["cov"]) == (2, 2)
    # the typed summary reads the same file back, field for field
    rs = RunSummary.read(out)
    assert rs.experiment == s["experiment"] == "ensemble" and rs.out == out
    assert rs.to_dict() == s and rs["mean"] == s["mean"] and rs.n_diverged == s["n_diverged"]
    with pytest.raises(ValueError, match="^experiment"):
        RunSummary.from_dict(out, {**s, "experiment": "nope"})
    with pytest.raises(ValueError, match="^out"):
        RunSummary.read(tmp_path / "missing")
    assert s["n_diverged"] == 0
    # exp(-Phi): E x2^2 = 1, and E x1^2 = 1 + O(sampling); both forms
    for form in ("ito", "atype"):
        st = s["forms"][form]
        assert abs(st["cov"][1][1] - 1.0) < 0.08
        chk = st["density_check"]
        assert chk["exact_applies"] and chk["tv_to_exact"] < 1.5 * chk["tv_sampling_expected"]
    assert (out / "ensemble_ito.h5").exists() and (out / "density.png").exists() and (out / "run.log").exists()
    import h5py

    with h5py.File(out / "ensemble_atype.h5") as f:
        assert f["x"].shape == (4, 2000, 2)
        assert json.loads(f.attrs["config"])["simulation"]["seed"] == 3
    # never silently overwritten
    r2 = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet"])
    assert r2.exit_code == 2 and "error: out:" in r2.output


def test_python_factory_config(tmp_path, monkeypatch):
    (tmp_path / "myprob.py").write_text(textwrap.dedent("""
        import sdesim
        def make(scale=1.0):
            return sdesim.problems.linear([[scale, 0.0], [0.0, 2.0 * scale]], [[1.0, 0.0], [0.0, 1.0]])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = _write(tmp_path, """
        [problem]
        kind = "python"
        factory = "myprob:make"
        args = {scale = 1.0}
        [temperature]
        beta_inv = 0.5
        [simulation]
        n_particles = 4000
        n_steps = 100
        dt = 0.05
        save_every = 50
        burn_in = 100
        [output]
        trajectory = false
    """)
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    # OU: var = beta_inv / F_ii (EM at dt=0.05 inflates by 1/(1 - dt F/2))
    var = np.diag(s["cov"])
    expect = np.array([0.5 / (1 - 0.025), 0.25 / (1 - 0.05)])
    assert np.all(np.abs(var - expect) < 5 * expect * np.sqrt(2 / 8000))


BAD = [
    ("[problem]\nkind='rotating_double_well'\nlam=1\nfoo=2\n[simulation]\nn_particles=1\nn_steps=1\ndt=0.1", "problem.foo"),
    ("[problm]\nkind='linear'", "problm"),
    ("[problem]\nkind='nope'\n[simulation]\nn_particles=1\nn_steps=1\ndt=0.1", "problem.kind"),
    ("[simulation]\nn_particles=1\nn_steps=1\ndt=0.1", "problem"),
    ("[problem]\nkind='rotating_double_well'", "simulation"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=0\nn_steps=1\ndt=0.1", "simulation.n_particles"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=1.5\nn_steps=1\ndt=0.1", "simulation.n_particles"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=1\ndt=0.0", "simulation.dt"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=1\ndt=-1", "simulation.dt"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=1\ndt=nan", "simulation.dt"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\ndt=0.1", "simulation.n_steps"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1\nsave_every=3", "simulation.save_every"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1\nform='strat'", "simulation.form"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1\nmethod='rk9'", "simulation.method"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1\nseed=-2", "simulation.seed"),
    ("[problem]\nkind='rotating_double_well'\nlam='x'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.lam"),
    ("[problem]\nkind='linear'\nF=[[1,0],[0,1]]\nD=[[1,2],[0,1]]\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.D"),
    ("[problem]\nkind='linear'\nF=[[1,0],[0,1]]\nD=[[1,2],[2,1]]\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.D"),
    ("[problem]\nkind='linear'\nF=[[1,0,0],[0,1,0]]\nD=[[1,0],[0,1]]\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.F"),
    ("[problem]\nkind='linear'\nF=[[1,0],[0,1]]\nD=[[1,0,0],[0,1,0],[0,0,1]]\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.D"),
    ("[problem]\nkind='linear'\nF=[[-1,0],[0,1]]\nD=[[1,0],[0,1]]\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.F"),
    ("[problem]\nkind='linear'\nD=[[1,0],[0,1]]\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.F"),
    ("[problem]\nkind='python'\nfactory='no_such_module_xyz:make'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.factory"),
    ("[problem]\nkind='python'\nfactory='json'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.factory"),
    ("[problem]\nkind='python'\nfactory='json:nope'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "problem.factory"),
    ("[problem]\nkind='rotating_double_well'\n[temperature]\nlr=0.1\nbatch=20\nn_data=10\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "temperature.batch"),
    ("[problem]\nkind='rotating_double_well'\n[temperature]\nbeta_inv=0\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "temperature.beta_inv"),
    ("[problem]\nkind='rotating_double_well'\n[temperature]\nlr=-0.1\nbatch=2\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "temperature.lr"),
    ("[problem]\nkind='rotating_double_well'\n[temperature]\nbeta_inv=1\nlr=0.1\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1", "temperature"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1\n[analysis]\nbox=[[1,0],[0,1]]", "analysis.box"),
    ("[problem]\nkind='rotating_double_well'\n[simulation]\nn_particles=10\nn_steps=10\ndt=0.1\ndtype='float16'", "simulation.dtype"),
    ("this is = = not toml", "config"),
]

# chain experiments ([experiment] kind = "toy2d" | "longrun"): valid bases, one mistake per row
TOY = "[experiment]\nkind='toy2d'\n[temperature]\nlr=0.04\nbatch=1\n"
TOY_SIM = "[simulation]\nn_chains=100\nn_snapshots=5\n"
LONG = "[experiment]\nkind='longrun'\n[temperature]\nlr=0.001\nbatch=32\n"
LONG_SIM = "[simulation]\nepochs=60\n"

BAD_CHAINS = [
    ("[experiment]\nkind='chains'\n" + TOY_SIM, "experiment.kind"),
    ("[experiment]\nkind='toy2d'\nlr=0.1\n" + TOY_SIM, "experiment.lr"),
    ("[experiment]\nkind=2\n" + TOY_SIM, "experiment.kind"),
    (TOY + TOY_SIM + "[problem]\nkind='linear'", "problem.kind"),
    (TOY + TOY_SIM + "[problem]\nn_data=41", "problem.n_data"),
    (TOY + TOY_SIM + "[problem]\nn_data=2", "problem.n_data"),
    (TOY + TOY_SIM + "[problem]\nratio=0", "problem.ratio"),
    (TOY + TOY_SIM + "[problem]\nx_true=[1.0]", "problem.x_true"),
    ("[experiment]\nkind='toy2d'\n[temperature]\nlr=0.04\nbatch=41\n" + TOY_SIM, "temperature.batch"),
    ("[experiment]\nkind='toy2d'\n[temperature]\nlr=0.04\nbatch=1.5\n" + TOY_SIM, "temperature.batch"),
    ("[experiment]\nkind='toy2d'\n[temperature]\nbatch=1\n" + TOY_SIM, "temperature.lr"),
    ("[experiment]\nkind='toy2d'\n[temperature]\nbeta_inv=0.02\n" + TOY_SIM, "temperature.beta_inv"),
    (TOY + "[simulation]\nn_chains=0\nn_snapshots=5", "simulation.n_chains"),
    (TOY + "[simulation]\nn_chains=10\nn_snapshots=5", "simulation.n_chains"),
    (TOY + "[simulation]\nn_chains=100\nn_snapshots='5'", "simulation.n_snapshots"),
    (TOY + "[simulation]\nn_chains=100", "simulation.n_snapshots"),
    (TOY + TOY_SIM + "sampling='bogus'", "simulation.sampling"),
    (TOY + TOY_SIM + "sampling='shuffle'", "simulation.sampling"),
    (TOY + TOY_SIM + "n_particles=10", "simulation.n_particles"),
    (TOY + TOY_SIM + "dtype='float16'", "simulation.dtype"),
    (TOY + TOY_SIM + "[analysis]\nfp_cells=100", "analysis.fp_cells"),
    (TOY + TOY_SIM + "[analysis]\ncurrent_steps=41", "analysis.current_steps"),
    (TOY + TOY_SIM + "[output]\nfigure='yes'", "output.figure"),
    (LONG + "[problem]\nkind='tiny_fc'\n" + LONG_SIM, "problem"),
    ("[experiment]\nkind='longrun'\n[temperature]\nlr=0.001\nbatch=1000\n" + LONG_SIM, "temperature.batch"),
    ("[experiment]\nkind='longrun'\n[temperature]\nlr=0\nbatch=32\n" + LONG_SIM, "temperature.lr"),
    (LONG + "[simulation]\nepochs=0", "simulation.epochs"),
    (LONG + "[simulation]\nepochs=20", "simulation.epochs"),
    (LONG + "[simulation]\nburn_in_epochs=10", "simulation.epochs"),
    (LONG + LONG_SIM + "n_chains=-1", "simulation.n_chains"),
    (LONG + LONG_SIM + "n_chains=2\nsgld_chains=3", "simulation.sgld_chains"),
    (LONG + LONG_SIM + "kernels=['sgd', 'adam']", "simulation.kernels"),
    (LONG + LONG_SIM + "kernels=[]", "simulation.kernels"),
    (LONG + LONG_SIM + "kernels='sgd'", "simulation.kernels"),
    (LONG + LONG_SIM + "sampling='replacement'", "simulation.sampling"),
    (LONG + LONG_SIM + "chunk_epochs=0", "simulation.chunk_epochs"),
    (LONG + LONG_SIM + "[analysis]\nmax_lag=60", "analysis.max_lag"),
    (LONG + LONG_SIM + "[analysis]\nf_cut=0.4", "analysis.f_cut"),
    (LONG + LONG_SIM + "[analysis]\nf_cut=0.01", "simulation.epochs"),
]
BAD += BAD_CHAINS


@pytest.mark.parametrize("text, field", BAD, ids=[f for _, f in BAD])
def test_bad_config_one_line_exit_2(tmp_path, text, field):
    cfg = _write(tmp_path, text)
    out = tmp_path / "run"
    r = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), r.output
    assert "Traceback" not in r.output
    assert not out.exists()  # no work started


@pytest.mark.parametrize("text, field", BAD_CHAINS, ids=[f for _, f in BAD_CHAINS])
def test_bad_chain_config_python_value_error(tmp_path, text, field):
    """The Python API raises ValueError with the message the command line prints."""
    from sdesim.cli import load_config

    cfg = _write(tmp_path, text)
    with pytest.raises(ValueError) as e:
        load_config(cfg)
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    assert str(e.value).startswith(field) and r.output.strip() == f"error: {e.value}"


def test_missing_config_file(tmp_path):
    r = runner.invoke(app, ["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and r.output.startswith("error: config: file not found")


def test_help_and_info_subprocess():
    r = subprocess.run([sys.executable, "-m", "sdesim.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("run", "info", "figures", "bench"):
        assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-m", "sdesim.cli", "info"], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["jax"]


def test_default_config_is_valid_and_prints():
    r = runner.invoke(app, ["run", "--print-default-config"])
    assert r.exit_code == 0 and "rotating_double_well" in r.output


def test_load_ensemble_round_trip(tmp_path):
    import sdesim

    cfg = _write(tmp_path, SMALL)
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet"]).exit_code == 0
    e = sdesim.load_ensemble(out / "ensemble_ito.h5")
    s = json.loads((out / "summary.json").read_text())
    np.testing.assert_allclose(e.mean(), s["forms"]["ito"]["mean"], rtol=1e-10)
    assert e.x.shape == (4, 2000, 2) and e.t[0] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="^path"):
        sdesim.load_ensemble(tmp_path / "nope.h5")
