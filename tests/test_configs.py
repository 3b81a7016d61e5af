"""Every shipped example config validates and runs in --quick mode."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sdesim.cli import app

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.toml"))


def test_there_are_configs():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_config_runs_quick(cfg, tmp_path):
    r = CliRunner().invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--quick", "--quiet"])
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["n_diverged"] == 0 and s["mean"] is not None
