"""The package as a user gets it: a wheel installed (not editable) in a fresh virtual environment.

The wheel is built from a copy of the sources (``pyproject.toml``, ``README.md``,
``sdesim/``), so the build writes nothing into the checkout, and installed with
``--no-deps`` into a virtual environment made with ``--system-site-packages``:
the heavy dependencies already installed are reused and nothing is downloaded.
Every command then runs with the environment's own ``python`` and ``sdesim``
console script from an empty temporary directory, without ``PYTHONPATH``, so
the checkout (or an editable install of it) can't stand in for the package:
``sdesim.__file__`` must lie inside the environment.

Building offline needs setuptools with a wheel builder (setuptools >= 70.1, or
the ``wheel`` package), both in the ``test`` extra; without them pip builds in
an isolated environment instead, which needs a package index.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.install

REPO = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
SUBPACKAGES = ("analysis", "chains", "cli", "experiments", "experiments/figures", "nn")
TIMEOUT = 600  # seconds per command; a quick run takes well under a minute


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def _call(cmd, cwd, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {res.returncode}\n"
        f"--- stdout\n{res.stdout[-4000:]}\n--- stderr\n{res.stderr[-4000:]}"
    )
    return res


def _offline_backend() -> bool:
    """Can setuptools build a wheel here without fetching anything?"""
    import setuptools

    major, minor = (int(p) for p in setuptools.__version__.split(".")[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the wheel, install it in a new environment; return (wheel, sources, venv, work directory)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(REPO / "sdesim", src / "sdesim", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ["pyproject.toml", "README.md"] + [Path(p).name for p in glob.glob(str(REPO / "LICEN[CS]E*"))]:
        shutil.copy2(REPO / name, src / name)

    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp / "dist", src]
    if _offline_backend():
        build[4:4] = ["--no-build-isolation", "--no-index"]
    _call(build, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("sdesim-*.whl")

    venv = tmp / "venv"
    # No pip of its own (ensurepip is slow): the system pip, visible through
    # --system-site-packages, installs into the environment that runs it.
    _call([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", venv], cwd=tmp)
    if sys.prefix != sys.base_prefix:  # run from a virtual environment: make its packages visible too
        (purelib,) = (venv / "lib").glob("python*/site-packages")
        lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
        (purelib / "outer-site-packages.pth").write_text("\n".join(lines) + "\n")
    py = venv / "bin" / "python"
    _call([py, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed", wheel], cwd=tmp)

    work = tmp / "work"
    work.mkdir()
    return wheel, src, venv, work


def test_wheel_holds_every_module_and_nothing_else(installed):
    wheel, src, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n for n in names if not n.startswith(f"sdesim-{VERSION}.dist-info/")}
    sources = {
        p.relative_to(src).as_posix()
        for p in (src / "sdesim").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert shipped == sources  # every module, no stray data files
    for sub in SUBPACKAGES:
        assert f"sdesim/{sub}/__init__.py" in shipped
    entry_points = zipfile.ZipFile(wheel).read(f"sdesim-{VERSION}.dist-info/entry_points.txt").decode()
    assert "sdesim = sdesim.cli:main" in entry_points


def test_import_from_environment(installed):
    _, _, venv, work = installed
    res = _call([venv / "bin" / "python", "-c", "import sdesim; print(sdesim.__file__); print(sdesim.__version__)"], cwd=work)
    file, version = res.stdout.split()
    path = Path(file).resolve()
    assert path.is_relative_to(venv.resolve()), f"imported {path}, not the installed copy"
    assert not path.is_relative_to(REPO / "sdesim")
    assert version == VERSION


def test_run_default_config(installed):
    _, _, venv, work = installed
    _call([venv / "bin" / "sdesim", "run", "--quick", "--out", work / "run", "--quiet"], cwd=work)
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["versions"]["sdesim"] == VERSION
    assert set(summary["forms"]) == {"ito", "atype"}


def test_figures(installed):
    _, _, venv, work = installed
    _call([venv / "bin" / "sdesim", "figures", "--quick", "--only", "spectra", "--out", work / "figs"], cwd=work)
    assert (work / "figs" / "spectra_quick.png").stat().st_size > 0
    data = json.loads((work / "figs" / "spectra_quick.json").read_text())
    assert data["quick"] is True
    assert data["versions"]["sdesim"] == VERSION


def test_bench(installed):
    _, _, venv, work = installed
    # One problem, one peer (NumPy, nothing to compile), one repeat: seconds, not minutes.
    _call([venv / "bin" / "sdesim", "bench", "--quick", "--problems", "ex19", "--impls", "numpy", "--repeats", "1",
           "--out", work / "bench"], cwd=work)
    (out,) = (work / "bench").glob("ensemble_*_quick.json")
    assert out.with_suffix(".md").stat().st_size > 0
    data = json.loads(out.read_text())
    assert data["meta"]["complete"] is True
    (row,) = data["rows"]
    assert "particle_steps_per_s" in row["results"]["sdesim"], row["results"]["sdesim"]


def test_nothing_written_to_working_directory(installed):
    """Each command wrote only under its --out (runs after the commands above, in file order)."""
    *_, work = installed
    assert {p.name for p in work.iterdir()} <= {"run", "figs", "bench"}
