"""The ``sdesim`` command line.

    sdesim run [CONFIG.toml] --out DIR [--force] [--quiet]
    sdesim info
    sdesim figures [--only NAME] [--quick]
    sdesim bench [--quick]

A user mistake (bad config, unknown key, non-empty output directory) prints one
line ``error: <field>: <what is wrong>`` and exits with code 2, before any work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="sdesim: simulate SGD as a stochastic differential equation (Chaudhari & Soatto 2018).",
)

REPO = Path(__file__).resolve().parent.parent


def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="TOML config; omit for the embedded default (Example 19, lam = 1.5, both forms)."),
    out: Path = typer.Option(Path("runs/default"), "--out", "-o", help="Run directory for summary.json, ensemble_*.h5, density.png, run.log."),
    force: bool = typer.Option(False, "--force", help="Overwrite a non-empty run directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run in --out from its last checkpoint (bit-identical result)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (for scripts)."),
    quick: bool = typer.Option(False, "--quick", help="Shrink the run to seconds (<= 1000 particles, few steps) to try a config."),
    print_config: bool = typer.Option(False, "--print-default-config", help="Print the embedded default config and exit."),
):
    """Integrate a particle ensemble and write summary.json (see DESIGN.md for the schema)."""
    from ._config import DEFAULT_CONFIG_TOML, ConfigError, load_config

    if print_config:
        typer.echo(DEFAULT_CONFIG_TOML.strip())
        return
    try:
        if resume and config is None:  # continue with the normalised config the run wrote
            if not (out / "config.json").exists():
                _fail(f"out: {out} holds no run to resume (config.json missing)")
            cfg = _load_json_config(out / "config.json")
        else:
            cfg = load_config(config)
    except ConfigError as e:
        _fail(str(e))
    from ._config import build_problem, quick_config

    if quick:
        cfg = quick_config(cfg)
    from ._run import CheckpointError, RunDirError, run_experiment

    try:
        build_problem(cfg)  # fail on factory errors before creating the directory
        summary = run_experiment(cfg, out, force=force, quiet=quiet, resume=resume)
    except (ConfigError, RunDirError, CheckpointError) as e:
        _fail(str(e))
    if not quiet:
        typer.echo(f"wrote {out / 'summary.json'}")
        for form, st in summary["forms"].items():
            line = f"  {form}: mean={_fmt(st['mean'])} n_diverged={st['n_diverged']} {st['particle_steps_per_s']:.3g} particle-steps/s"
            chk = st.get("density_check")
            if chk:
                line += f"  TV to exp(-Phi/beta_inv) = {chk['tv_to_exact']:.4f} (sampling {chk['tv_sampling_expected']:.4f})"
            typer.echo(line)


def _load_json_config(path: Path) -> dict:
    from ._config import ConfigError

    # config.json is the normalised config written by the run itself
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"config: cannot read {path}: {e}") from None
    if not isinstance(cfg, dict) or "problem" not in cfg or "simulation" not in cfg:
        raise ConfigError(f"config: {path} is not an sdesim run config")
    return cfg


def _fmt(v):
    return "[" + ", ".join(f"{x:.4f}" for x in v) + "]" if v is not None else "n/a"


@app.command()
def info():
    """Versions, devices and backend."""
    import jax

    from ._run import versions

    v = versions()
    v["devices"] = [str(d) for d in jax.devices()]
    v["x64"] = bool(jax.config.jax_enable_x64)
    typer.echo(json.dumps(v, indent=2))


@app.command()
def figures(
    only: Optional[str] = typer.Option(None, "--only", help="Regenerate only the figure scripts whose name contains this."),
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes (seconds each) to exercise every figure."),
):
    """Regenerate every figure in figures/ (with its JSON) from scripts/fig_*.py."""
    scripts = sorted((REPO / "scripts").glob("fig_*.py"))
    if not scripts:
        _fail("figures: no scripts/fig_*.py found (run from a source checkout)")
    if only:
        scripts = [s for s in scripts if only in s.stem]
        if not scripts:
            _fail(f"--only: no figure script matches {only!r}")
    failed = []
    for s in scripts:
        typer.echo(f"== {s.name}")
        args = [sys.executable, str(s)] + (["--quick"] if quick else [])
        if subprocess.run(args, cwd=REPO).returncode != 0:
            failed.append(s.name)
    if failed:
        typer.echo(f"failed: {', '.join(failed)}", err=True)
        raise typer.Exit(code=1)


@app.command()
def bench(quick: bool = typer.Option(False, "--quick", help="Small sizes, for a smoke run.")):
    """Run the ensemble benchmark (scripts/bench_ensemble.py) and print its table."""
    script = REPO / "scripts" / "bench_ensemble.py"
    if not script.exists():
        _fail("bench: scripts/bench_ensemble.py not found (run from a source checkout)")
    args = [sys.executable, str(script)] + (["--quick"] if quick else [])
    raise typer.Exit(code=subprocess.run(args, cwd=REPO).returncode)


def main():  # entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
