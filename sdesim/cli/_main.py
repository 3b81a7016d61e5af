"""The ``sdesim`` command line.

    sdesim run [CONFIG.toml] --out DIR [--force] [--quiet]
    sdesim info
    sdesim figures [--only NAME] [--quick] [--fresh] [--out DIR]
    sdesim bench [--quick]

A user mistake (bad config, unknown key, non-empty output directory) prints one
line ``error: <field>: <what is wrong>`` and exits with code 2, before any work.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="sdesim: simulate SGD as a stochastic differential equation (Chaudhari & Soatto 2018).",
)

def _fail(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="TOML config; omit for the embedded default (Example 19, lam = 1.5, both forms)."),
    out: Path = typer.Option(Path("runs/default"), "--out", "-o", help="Run directory for summary.json, *.h5, a PNG, run.log (never overwritten without --force)."),
    force: bool = typer.Option(False, "--force", help="Overwrite a non-empty run directory."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run in --out from its last checkpoint (bit-identical result; a damaged checkpoint, or a long run started by other code, is refused)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar (for scripts)."),
    quick: bool = typer.Option(False, "--quick", help="Shrink the run to seconds to try a config (<= 1000 particles and few steps; chains: few chains or epochs)."),
    print_config: bool = typer.Option(False, "--print-default-config", help="Print the embedded default config and exit."),
):
    """Run an experiment from a config and write summary.json (schema: configs/README.md).

    By default a particle ensemble; a config with [experiment] kind = "toy2d" (SGD vs SDE vs
    Langevin on a 2D toy) or "longrun" (tiny-fc SGD/SGLD chains for many epochs) runs chains
    (configs/README.md).
    """
    from ._config import DEFAULT_CONFIG_TOML, ConfigError, experiment_kind, load_config

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

    kind = experiment_kind(cfg)
    try:
        if kind == "ensemble":
            build_problem(cfg)  # fail on factory errors before creating the directory
        summary = run_experiment(cfg, out, force=force, quiet=quiet, resume=resume)
    except (ConfigError, RunDirError, CheckpointError) as e:
        _fail(str(e))
    if quiet:
        return
    typer.echo(f"wrote {out / 'summary.json'}")
    if kind != "ensemble":
        from ._run_chains import summary_lines

        for line in summary_lines(summary):
            typer.echo(line)
    else:
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
    if not isinstance(cfg, dict) or "simulation" not in cfg or not ("problem" in cfg or "experiment" in cfg):
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
    only: Optional[str] = typer.Option(None, "--only", help="Regenerate only the figures whose name contains this."),
    quick: bool = typer.Option(False, "--quick", help="Small sizes (about 3 minutes for all on 2 CPU cores), written as <name>_quick.*."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output directory (default: ./figures)."),
    fresh: bool = typer.Option(False, "--fresh", help="Discard the data kept for resuming (runs/longrun) and start those runs over."),
):
    """Regenerate every figure (with its JSON) from sdesim.experiments.figures.

    The figures run one after another in this process, so compiled programs are
    shared between them; each writes <name>.png, .pdf and .json (the numbers
    the figure shows, runtime_s, argv, versions). A failing figure is reported
    and the others still run; the exit code is then 1.

    The long run (fig_longrun) keeps its weights in runs/longrun and resumes
    them only if they were made by the same code and arguments (a fingerprint
    kept with the data); otherwise it stops with one line asking for --fresh,
    which discards them and starts over.
    """
    from ..experiments import figure_names, run_figure

    names = figure_names()
    if only:
        names = [n for n in names if only in n]
        if not names:
            _fail(f"--only: no figure matches {only!r}")
    argv = (["--quick"] if quick else []) + (["--fresh"] if fresh else []) + (
        ["--out", str(out.resolve())] if out is not None else [])
    failed, t_all = [], time.time()
    for name in names:
        typer.echo(f"== {name}")
        t0 = time.time()
        ok = run_figure(name, argv)
        typer.echo(f"== {name}: {'done' if ok else 'FAILED'} in {time.time() - t0:.1f} s")
        if not ok:
            failed.append(name)
    typer.echo(f"figures: {len(names) - len(failed)}/{len(names)} in {time.time() - t_all:.1f} s")
    if failed:
        typer.echo(f"failed: {', '.join(failed)}", err=True)
        raise typer.Exit(code=1)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context, quick: bool = typer.Option(False, "--quick", help="Small sizes, for a smoke run.")):
    """Run the ensemble benchmark (sdesim vs lax.scan, diffrax, NumPy, torchsde) and write benchmarks/.

    Extra options go to the benchmark (--sizes, --problems, --out, ...; see
    sdesim.experiments.bench).
    """
    from ..experiments import bench as bench_module

    bench_module.main((["--quick"] if quick else []) + list(ctx.args))


def main():  # entry point
    from .._devices import use_cpu_devices

    use_cpu_devices()  # one CPU device per core for this process (SDESIM_CPU_DEVICES=1 opts out)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
