"""Data safety of the long run: checksummed checkpoints and chunks, and no resume across code or config changes.

A damaged checkpoint or chunk file is refused (``ValueError`` naming
``checkpoint``; on the command line one ``error: checkpoint: ...`` line and
exit code 2) and never loaded; a run directory made by other code or other
parameters is refused with a line naming the fix; ``fresh=True`` /
``--fresh`` starts over; an intact interrupted run still resumes
bit-identically. The Python long-run tests pass a 3-weight least-squares
problem (``finite_sum=_tiny_problem``) instead of tiny-fc so that each takes
seconds; the command-line tests share one real ``--quick`` run stopped after its
first chunk (by ``run_chains_experiment``'s ``on_chunk``) and work on copies of
it. "Other code" is simulated as it looks on disk: a run directory whose
``manifest.json`` records another code fingerprint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from sdesim.chains import FiniteSum, load_stream, sgd, stream_chains
from sdesim.cli import (CheckpointError, app, load_config, quick_config, read_checked_npz, run_chains_experiment,
                        write_checked_npz)
from sdesim.experiments import StaleRunError, code_fingerprint, discard_longrun, longrun

REPO = Path(__file__).resolve().parent.parent
CONFIG = str(REPO / "configs" / "tiny_fc_longrun.toml")
runner = CliRunner()

TINY_META = {"n_data": 64, "dim": 3, "dataset": "tiny"}


def _tiny_problem(seed=0):
    """``seed -> (fs, w0, meta)`` for ``longrun(finite_sum=...)``: least squares in 3 weights, 64 examples."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(64, 3)).astype(np.float32)
    y = (A @ np.ones(3) + 0.1 * rng.normal(size=64)).astype(np.float32)
    fs = FiniteSum(lambda w, a, yk: 0.5 * (a @ w - yk) ** 2, (jnp.asarray(A), jnp.asarray(y)), 3)
    return fs, np.zeros(3, np.float32), dict(TINY_META)


class _Interrupt(RuntimeError):
    """Stands for a kill between two committed chunks."""


def _stop_after(n):
    def on_chunk(done, total):
        if done >= n:
            raise _Interrupt(f"stopped after chunk {done}/{total}")

    return on_chunk


def _stream(out, **kw):
    fs = FiniteSum(lambda x, a, yk: 0.5 * (a @ x - yk) ** 2,
                     (jnp.asarray(np.arange(24.0).reshape(8, 3) / 10), jnp.asarray(np.linspace(-1, 1, 8))), 3)
    ker = sgd(fs, 0.05, 2, sampling="shuffle")
    return stream_chains(ker, np.zeros(3), str(out), n_chains=2, n_steps=4 * 16, save_every=4, burn_in=8, seed=3,
                           chunk_saves=4, observe=lambda x: jnp.sum(x**2)[None], **kw)


def _flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x55
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _alter_leaf(path: Path) -> None:
    """Rewrite the checkpoint as a valid .npz whose chain state differs (only the SHA-256 can tell)."""
    with np.load(path) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["leaf0"].flat[0] += 1.0
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


DAMAGE = {"flip": _flip, "truncate": _truncate, "altered": _alter_leaf}


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """An uninterrupted stream and one stopped after 2 of its 4 chunks (made once; tests work on copies)."""
    d = tmp_path_factory.mktemp("streams")
    _stream(d / "ref")
    with pytest.raises(_Interrupt):
        _stream(d / "cut", on_chunk=_stop_after(2))
    return d / "ref", d / "cut"


@pytest.fixture
def interrupted(streams, tmp_path):
    ref, cut = streams
    shutil.copytree(cut, tmp_path / "cut")
    return ref, tmp_path / "cut"


def test_interrupted_stream_resumes_bit_identically(interrupted):
    ref, cut = interrupted
    with np.load(cut / "checkpoint.npz") as ck:
        assert int(ck["chunks_done"]) == 2
    _stream(cut)
    for what in ("x", "obs"):
        a, b = load_stream(str(ref), what=what), load_stream(str(cut), what=what)
        assert a.shape == (16, 2, 3 if what == "x" else 1)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_checkpoint_is_refused_not_loaded(interrupted, damage):
    _, cut = interrupted
    ck = cut / "checkpoint.npz"
    DAMAGE[damage](ck)
    before = ck.read_bytes()
    with pytest.raises(ValueError, match=r"^checkpoint: .*checkpoint\.npz") as e:
        _stream(cut)
    assert isinstance(e.value, CheckpointError) and "\n" not in str(e.value)
    assert ck.read_bytes() == before and not (cut / "x_000002.npy").exists()  # nothing ran, nothing rewritten
    with pytest.raises(ValueError, match="^checkpoint:"):
        load_stream(str(cut))


@pytest.mark.parametrize("damage", ["flip", "truncate", "missing"])
@pytest.mark.parametrize("name", ["x_000000.npy", "obs_000001.npy"])
def test_damaged_chunk_is_refused(interrupted, damage, name):
    _, cut = interrupted
    p = cut / name
    if damage == "missing":
        p.unlink()
    else:
        (_flip if damage == "flip" else _truncate)(p)
    with pytest.raises(ValueError, match=f"^checkpoint: chunk file .*{name}"):
        _stream(cut)  # checked before the run goes on
    assert not (cut / "x_000002.npy").exists()
    with pytest.raises(ValueError, match=f"^checkpoint: chunk file .*{name}"):
        load_stream(str(cut), what=name.split("_")[0])


def test_flipped_byte_in_chunk_data_passes_numpy_but_not_the_checksum(interrupted):
    """A raw .npy has no checksum of its own: the flipped chunk still loads with NumPy, differently."""
    ref, cut = interrupted
    p = cut / "x_000001.npy"
    _flip(p, at=0.9)
    assert not np.array_equal(np.load(p), np.load(ref / "x_000001.npy"))
    with pytest.raises(ValueError, match="^checkpoint: chunk file"):
        load_stream(str(cut), chain=0)


def test_checked_npz_round_trip_and_refusals(tmp_path):
    p = tmp_path / "a.npz"
    write_checked_npz(p, {"w": np.arange(6.0).reshape(2, 3), "n": np.int64(4)}, {"k": [1, 2]})
    arrays, meta = read_checked_npz(p)
    np.testing.assert_array_equal(arrays["w"], np.arange(6.0).reshape(2, 3))
    assert int(arrays["n"]) == 4 and meta == {"k": [1, 2]}
    # same bytes, other layout: the dtype and shape are part of the checksum
    with np.load(p) as z:
        m = z["meta"]
    np.savez(p, meta=m, w=np.arange(6.0).reshape(3, 2), n=np.int64(4))
    with pytest.raises(CheckpointError, match="fails its checksum; delete it"):
        read_checked_npz(p)
    np.savez(p, w=np.zeros(2))  # no checksum at all
    with pytest.raises(CheckpointError, match="^checkpoint: .* corrupted or partial"):
        read_checked_npz(p, fix="x")
    with pytest.raises(CheckpointError, match="is missing; try again$"):
        read_checked_npz(tmp_path / "none.npz", fix="try again")


# ---------------------------------------------------------------------------
# the long run: fingerprint, fresh start
# ---------------------------------------------------------------------------

SMALL = dict(epochs=6, burn_in_epochs=0, n_chains=2, kernels=("sgd",), chunk_epochs=2, seed=0,
             finite_sum=_tiny_problem)


def _as_if_other_code(run_dir: Path) -> str:
    """Make ``run_dir`` look started by other code (its recorded source hash all zeros); return the old manifest."""
    path = run_dir / "manifest.json"
    old = path.read_text()
    man = json.loads(old)
    man["fingerprint"]["code"]["source_sha256"] = "0" * 64
    path.write_text(json.dumps(man))
    return old


def _recorded_code(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())["fingerprint"]["code"]


def _files(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*.npy"))}


def test_longrun_refuses_other_code_or_parameters_and_fresh_starts_over(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(_Interrupt):
        longrun(str(out), **SMALL, on_chunk=_stop_after(1))
    man = json.loads((out / "manifest.json").read_text())
    assert man["fingerprint"]["code"] == code_fingerprint()
    assert man["fingerprint"]["config"]["epochs"] == 6
    assert man["fingerprint"]["config"]["problem"] == TINY_META
    before = _files(out)

    with pytest.raises(StaleRunError, match=r"^out_dir: .*other parameters \(epochs 6 -> 8\).*fresh=True") as e:
        longrun(str(out), **dict(SMALL, epochs=8))
    assert isinstance(e.value, ValueError) and e.value.reason.startswith("other parameters")

    def other_problem(seed):
        fs, w0, _ = _tiny_problem(seed)
        return fs, w0, dict(TINY_META, dataset="tiny2")

    with pytest.raises(StaleRunError, match=r"other parameters \(problem .*'tiny'.* -> .*'tiny2'"):
        longrun(str(out), **dict(SMALL, finite_sum=other_problem))
    recorded = _as_if_other_code(out)
    other = r"other code \(source_sha256 '0{12}\.\.\.' -> '[0-9a-f]{12}\.\.\.'\)"
    with pytest.raises(StaleRunError, match=other):
        longrun(str(out), **SMALL)
    assert _recorded_code(out)["source_sha256"] == "0" * 64  # the refusal left the manifest alone
    (out / "manifest.json").write_text(recorded)  # back to this code's fingerprint
    assert _files(out) == before  # refused before anything was touched

    s = longrun(str(out), **SMALL)  # same code and parameters: resumes
    resumed = _files(out)
    assert s["resumed"] and len(resumed) == 6

    _as_if_other_code(out)
    s = longrun(str(out), **SMALL, fresh=True)
    assert not s["resumed"]
    assert _recorded_code(out) == code_fingerprint() == s["code_fingerprint"]  # the other code's record is gone
    assert _files(out) == resumed  # started over: (the same code really, so) the resumed run was bit-identical


def test_longrun_refuses_a_directory_without_fingerprint(tmp_path):
    out = tmp_path / "old"
    longrun(str(out), **SMALL)
    (out / "manifest.json").unlink()  # as written before fingerprints existed
    with pytest.raises(StaleRunError, match=r"an older sdesim \(no fingerprint .*burn\.npz, summary\.json, sgd\)"):
        longrun(str(out), **SMALL)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(StaleRunError, match=r"unknown code and parameters \(unreadable manifest\.json\)"):
        longrun(str(out), **SMALL)
    assert not longrun(str(out), **SMALL, fresh=True)["resumed"]


def test_longrun_damaged_burn_in_and_checkpoint(tmp_path):
    out = tmp_path / "lr"
    with pytest.raises(_Interrupt):
        longrun(str(out), **SMALL, on_chunk=_stop_after(1))
    _flip(out / "sgd" / "checkpoint.npz")
    with pytest.raises(ValueError, match=r"^checkpoint: .*sgd/checkpoint\.npz .*; discard the run with fresh=True"):
        longrun(str(out), **SMALL)
    _truncate(out / "burn.npz")
    with pytest.raises(ValueError, match=r"^checkpoint: .*burn\.npz is corrupted or partial"):
        longrun(str(out), **SMALL)
    assert not longrun(str(out), **SMALL, fresh=True)["resumed"]
    assert load_stream(str(out / "sgd")).shape == (6, 2, 3)


def test_discard_keeps_foreign_files(tmp_path):
    out = tmp_path / "lr"
    longrun(str(out), **SMALL)
    (out / "notes.txt").write_text("mine")
    discard_longrun(str(out))
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    longrun(str(out), **SMALL)
    (out / "sgd" / "mine.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"^out_dir: .*sgd holds files a long run does not write \(mine\.txt\)"):
        discard_longrun(str(out))
    assert (out / "burn.npz").exists() and (out / "sgd" / "checkpoint.npz").exists()  # nothing removed


# ---------------------------------------------------------------------------
# command line: sdesim run --resume, sdesim figures --fresh, scripts/fig_longrun.py
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli_cut(tmp_path_factory):
    """What ``sdesim run tiny_fc_longrun.toml --quick --quiet`` leaves when stopped after its first chunk.

    Made once by ``run_chains_experiment`` (what ``sdesim run`` calls) with an
    ``on_chunk`` that raises; tests work on copies (:func:`cut`).
    """
    out = tmp_path_factory.mktemp("cli") / "cut"
    with pytest.raises(_Interrupt):
        run_chains_experiment(quick_config(load_config(CONFIG)), out, quiet=True, on_chunk=_stop_after(1))
    with np.load(out / "stream" / "sgd" / "checkpoint.npz") as ck:
        assert int(ck["chunks_done"]) == 1
    assert not (out / "summary.json").exists()
    return out


@pytest.fixture
def cut(cli_cut, tmp_path):
    shutil.copytree(cli_cut, tmp_path / "cut")
    return tmp_path / "cut"


def _one_error_line(r, prefix: str) -> str:
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), r.stderr
    return lines[0]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_cli_resume_damaged_checkpoint_one_line(cut, damage):
    out = cut
    DAMAGE[damage](out / "stream" / "sgd" / "checkpoint.npz")
    r = runner.invoke(app, ["run", "--out", str(out), "--resume", "--quiet"])
    line = _one_error_line(r, "error: checkpoint: ")
    assert "checkpoint.npz" in line and line.endswith("--force` (not --resume)")


def test_cli_resume_damaged_chunk_one_line(cut):
    out = cut
    _flip(out / "stream" / "sgd" / "x_000000.npy", at=0.99)
    r = runner.invoke(app, ["run", "--out", str(out), "--resume", "--quiet"])
    assert "x_000000.npy" in _one_error_line(r, "error: checkpoint: chunk file ")


def test_cli_resume_other_code_is_refused(cut):
    out = cut
    before = _files(out)
    _as_if_other_code(out / "stream")
    r = runner.invoke(app, ["run", "--out", str(out), "--resume", "--quiet"])
    line = _one_error_line(r, "error: out: ")
    assert "other code (source_sha256" in line and "--force" in line
    assert _files(out) == before and not (out / "summary.json").exists()


def test_cli_damaged_checkpoint_subprocess(cut):
    """The same refusal from a real process: exit status 2, one stderr line, no traceback."""
    out = cut
    _truncate(out / "stream" / "sgd" / "checkpoint.npz")
    code = textwrap.dedent("""
        import sys
        import jax
        jax.config.update("jax_enable_x64", True)  # as in this test process (tests/conftest.py): same fingerprint
        from sdesim.cli import main
        sys.argv = ["sdesim"] + sys.argv[1:]
        main()
    """)
    r = subprocess.run([sys.executable, "-c", code, "run", "--out", str(out), "--resume", "--quiet"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: checkpoint: ") and "corrupted or partial" in lines[0]


def test_figures_passes_fresh_to_the_scripts(monkeypatch):
    import sdesim.experiments

    seen = []
    monkeypatch.setattr(sdesim.experiments, "run_figure", lambda name, argv: seen.append((name, argv)) or True)
    assert runner.invoke(app, ["figures", "--only", "longrun", "--fresh"]).exit_code == 0
    assert seen == [("fig_longrun", ["--fresh"])]
    seen.clear()
    assert runner.invoke(app, ["figures", "--only", "longrun"]).exit_code == 0
    assert seen == [("fig_longrun", [])]


def test_fig_longrun_refuses_stale_data_and_fresh_starts_over(tmp_path, capsys):
    from sdesim.experiments.figures import fig_longrun

    data, figs = tmp_path / "data", tmp_path / "figs"
    argv = ["--quick", "--data", str(data), "--out", str(figs), "--epochs", "100", "--burn-in", "0",
            "--chains", "1", "--sgld-chains", "1"]
    assert fig_longrun.main(argv) == 0
    first = _files(data)
    assert not json.loads((figs / "longrun_quick.json").read_text())["resumed_existing_data"]
    assert fig_longrun.main(argv) == 0  # same code and arguments: the data is reused
    assert json.loads((figs / "longrun_quick.json").read_text())["resumed_existing_data"]
    capsys.readouterr()

    _as_if_other_code(data)
    assert fig_longrun.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {data} holds a long run started with other code")
    assert err[0].endswith("rerun with --fresh to discard it and start over")
    assert fig_longrun.main([a if a != "100" else "120" for a in argv]) == 2  # other arguments: refused as well
    assert "epochs 100 -> 120" in capsys.readouterr().err

    _truncate(data / "sgld" / "checkpoint.npz")
    assert fig_longrun.main(argv + ["--fresh"]) == 0
    d = json.loads((figs / "longrun_quick.json").read_text())
    assert not d["resumed_existing_data"] and d["summary"]["code_fingerprint"] == code_fingerprint()
    assert _recorded_code(data) == code_fingerprint()  # the other code's record is gone
    assert _files(data) == first
