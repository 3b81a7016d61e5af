"""Run configuration (TOML) for ``sdesim run``: parsing and validation.

Every field is checked before any work starts; a mistake raises
``ConfigError`` whose message names the field (``section.key``), which the
command line prints as one line with exit code 2.

Schema::

    [problem]      kind = "rotating_double_well" | "linear" | "anisotropic_double_well" | "python"
                   lam (rotating_double_well); F, D (linear, nested lists);
                   beta_inv, a, q0, q1 (anisotropic_double_well);
                   factory = "pkg.mod:fn", args = {...} (python: fn(**args) -> problem)
    [temperature]  beta_inv = ...      or   lr, batch, n_data, replacement
    [simulation]   form ("ito" | "atype" | "atype_naive" or a list of them), n_particles,
                   n_steps, dt, seed, save_every, burn_in, method, dtype, chunk_size
    [analysis]     bins, box = [[x0, x1], [y0, y1]] (2D problems), exact (compare with
                   exp(-Phi / beta_inv) when the problem carries Phi)
    [output]       trajectory (write ensemble_<form>.h5), figure (write density.png)

The optional ``[experiment] kind`` selects the run type: ``"ensemble"`` (the
default when the table is absent: the particle ensemble above), or one of two
chain experiments (:func:`sdesim.cli.run_chains_experiment`) with their own tables::

    kind = "toy2d"     SGD vs the SDE with exact D(x) vs Langevin on the 2D least-squares toy
                       (sdesim.experiments.compare_2d)
    [problem]      n_data (even, >= 4), ratio, sigma, v_scale, x_true = [x1, x2], seed (data)
    [temperature]  lr, batch (<= n_data); beta^-1 = lr / (2 batch)
    [simulation]   n_chains, n_snapshots, spacing, burn_in, seed, dtype,
                   sampling ("replacement": the SGD whose noise covariance is D/b)
    [analysis]     bins, fp_cells (a multiple of bins), current_steps (even; 0 skips), n_boot
    [output]       trajectory (snapshots in toy2d.h5), figure (toy2d.png)

    kind = "longrun"   SGD (and SGLD) chains of tiny-fc on 5-class 7x7 digits for many epochs,
                       streamed to disk with exact resume (sdesim.experiments.longrun)
    [temperature]  lr, batch (<= the 721 training images)
    [simulation]   epochs, burn_in_epochs, n_chains, sgld_chains (<= n_chains), kernels (a list
                   of "sgd", "sgld"), chunk_epochs, seed, sampling ("shuffle": epoch-wise)
    [analysis]     max_lag (< epochs), f_cut (low-frequency cut in 1/epoch, <= 0.25)
    [output]       trajectory (weights of every epoch in longrun_<kernel>.h5), figure (longrun.png)
"""

from __future__ import annotations

import copy
import importlib
import math
import sys
from typing import Any

import numpy as np

from .._validate import check_save_every, check_spd, check_stable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "ConfigError", "DEFAULT_CONFIG", "EXPERIMENTS", "load_config", "validate_config", "build_problem",
    "quick_config", "experiment_kind",
]


class ConfigError(ValueError):
    """A bad configuration value; the message starts with the field name."""


DEFAULT_CONFIG_TOML = """
# sdesim's embedded default: Example 19 (Chaudhari & Soatto 2018) at lam = 1.5,
# integrated in both the Ito and the A-type form; the stationary density of
# both must be exp(-Phi) (beta = 1) although the drift rotates.
[problem]
kind = "rotating_double_well"
lam = 1.5

[temperature]
beta_inv = 1.0

[simulation]
form = ["ito", "atype"]
n_particles = 10000
n_steps = 1000
dt = 0.02
seed = 0
save_every = 100
burn_in = 500
method = "euler"

[analysis]
bins = 40
box = [[-2.5, 2.5], [-3.0, 3.0]]
exact = true

[output]
trajectory = true
figure = true
"""

DEFAULT_CONFIG: dict = tomllib.loads(DEFAULT_CONFIG_TOML)

EXPERIMENTS = ("ensemble", "toy2d", "longrun")

_SCHEMA: dict[str, dict[str, Any]] = {
    "experiment": {"kind"},
    "problem": {"kind", "lam", "F", "D", "beta_inv", "a", "q0", "q1", "factory", "args"},
    "temperature": {"beta_inv", "lr", "batch", "n_data", "replacement"},
    "simulation": {
        "form", "n_particles", "n_steps", "dt", "seed", "save_every", "burn_in", "method",
        "dtype", "chunk_size", "checkpoint_every",
    },
    "analysis": {"bins", "box", "exact"},
    "output": {"trajectory", "figure"},
}
_KINDS = ("rotating_double_well", "linear", "anisotropic_double_well", "python")
_SIM_DEFAULTS = dict(
    form="ito", seed=0, save_every=None, burn_in=0, method="euler", dtype="float32",
    chunk_size=None, checkpoint_every=None,
)


def load_config(path) -> dict:
    """Read a TOML file (``None``: the embedded default) and validate it."""
    if path is None:
        return validate_config(copy.deepcopy(DEFAULT_CONFIG))
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {path}") from None
    except OSError as e:
        raise ConfigError(f"config: cannot read {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config: invalid TOML in {path}: {e}") from None
    return validate_config(raw)


def _num(value, field, *, positive=False, nonneg=False, integer=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{field}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"{field}: must be finite, got {value!r}")
    if integer and not isinstance(value, int):
        raise ConfigError(f"{field}: expected an integer, got {value!r}")
    if positive and value <= 0:
        raise ConfigError(f"{field}: must be > 0, got {value!r}")
    if nonneg and value < 0:
        raise ConfigError(f"{field}: must be >= 0, got {value!r}")
    return value


def _matrix(value, field):
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ConfigError(f"{field}: expected a matrix as nested lists of numbers") from None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ConfigError(f"{field}: expected a square matrix, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{field}: contains NaN or inf")
    return arr


def experiment_kind(cfg: dict) -> str:
    """The run type of a validated config: ``"ensemble"`` unless ``[experiment] kind`` says otherwise."""
    return cfg.get("experiment", {}).get("kind", "ensemble")


def _check_experiment(cfg: dict) -> str:
    """Validate the optional ``[experiment]`` table alone; return its kind."""
    exp = cfg.get("experiment", {"kind": "ensemble"})
    if not isinstance(exp, dict):
        raise ConfigError("experiment: expected a table")
    for key in exp:
        if key != "kind":
            raise ConfigError(f"experiment.{key}: unknown key (expected one of ['kind'])")
    kind = exp.get("kind")
    if kind not in EXPERIMENTS:
        raise ConfigError(f"experiment.kind: expected one of {EXPERIMENTS}, got {kind!r}")
    return kind


def _check_keys(cfg: dict, schema: dict, required=()) -> None:
    """Every section is a known table with known keys; the ``required`` sections are present."""
    for section in cfg:
        if section not in schema:
            raise ConfigError(f"{section}: unknown section (expected one of {sorted(schema)})")
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"{section}: expected a table")
        for key in cfg[section]:
            if key not in schema[section]:
                raise ConfigError(f"{section}.{key}: unknown key (expected one of {sorted(schema[section])})")
    for section in required:
        if section not in cfg:
            raise ConfigError(f"{section}: missing section")


def validate_config(cfg: dict) -> dict:
    """Check every field; return a normalised copy (defaults filled in).

    One validator per section; the semantic checks are the Python API's own
    (:mod:`sdesim._validate`), so a config and a direct call refuse the same
    values, with the field named ``section.key``.
    """
    if not isinstance(cfg, dict):
        raise ConfigError("config: expected a table")
    kind = _check_experiment(cfg)
    if kind != "ensemble":
        return _validate_chains(cfg, kind)
    _check_keys(cfg, _SCHEMA, required=("problem", "simulation"))
    out = copy.deepcopy(cfg)
    _validate_problem(out["problem"])
    _validate_temperature(out.setdefault("temperature", {}), out["problem"])
    _validate_simulation(out["simulation"])
    _validate_analysis(out.setdefault("analysis", {}))
    _validate_output(out.setdefault("output", {}))
    return out


class _api_check:
    """``with _api_check("section"):`` turns an API ``ValueError("key: ...")`` into ``ConfigError("section.key: ...")``."""

    def __init__(self, section: str):
        self.section = section

    def __enter__(self):
        return self

    def __exit__(self, typ, exc, tb):
        if typ is not None and issubclass(typ, ValueError) and not issubclass(typ, ConfigError):
            raise ConfigError(f"{self.section}.{exc}") from None
        return False


def _validate_problem(prob: dict) -> None:
    kind = prob.get("kind")
    if kind not in _KINDS:
        raise ConfigError(f"problem.kind: expected one of {_KINDS}, got {kind!r}")
    if kind == "rotating_double_well":
        prob["lam"] = _num(prob.get("lam", 1.5), "problem.lam")
    elif kind == "linear":
        _required(prob, ("F", "D"), "problem")
        with _api_check("problem"):
            F = check_stable(_matrix(prob["F"], "problem.F"), "F")
            check_spd(_matrix(prob["D"], "problem.D"), "D", dim=F.shape[0])
    elif kind == "anisotropic_double_well":
        prob["beta_inv"] = _num(prob.get("beta_inv", 0.5), "problem.beta_inv", positive=True)
        for k, dflt in (("a", 0.3), ("q0", 0.5), ("q1", 0.3)):
            prob[k] = _num(prob.get(k, dflt), f"problem.{k}")
    else:  # python
        fac = prob.get("factory")
        if not isinstance(fac, str) or ":" not in fac:
            raise ConfigError(f"problem.factory: expected 'package.module:function', got {fac!r}")
        if "args" in prob and not isinstance(prob["args"], dict):
            raise ConfigError("problem.args: expected a table of keyword arguments")
        _resolve_factory(fac)  # import now, so a typo fails before any work


def _validate_temperature(temp: dict, prob: dict) -> None:
    """``beta_inv``, or ``lr``/``batch``(/``n_data``/``replacement``) through :func:`sdesim.temperature`."""
    if "beta_inv" in temp:
        if any(k in temp for k in ("lr", "batch", "n_data", "replacement")):
            raise ConfigError("temperature: give either beta_inv or lr/batch(/n_data/replacement), not both")
        temp["beta_inv"] = _num(temp["beta_inv"], "temperature.beta_inv", positive=True)
    elif "lr" in temp or "batch" in temp:
        from .._temperature import temperature

        _required(temp, ("lr", "batch"), "temperature")
        lr = _num(temp["lr"], "temperature.lr", positive=True)
        batch = _num(temp["batch"], "temperature.batch", positive=True, integer=True)
        n_data = temp.get("n_data")
        if n_data is not None:
            n_data = _num(n_data, "temperature.n_data", positive=True, integer=True)
        repl = temp.get("replacement", True)
        if not isinstance(repl, bool):
            raise ConfigError(f"temperature.replacement: expected true or false, got {repl!r}")
        with _api_check("temperature"):
            temp["beta_inv"] = temperature(lr, batch, n_data, repl)
        if temp["beta_inv"] <= 0:
            raise ConfigError("temperature.batch: batch = n_data without replacement gives zero temperature")
    elif prob["kind"] == "anisotropic_double_well":
        temp["beta_inv"] = prob["beta_inv"]
    else:
        temp["beta_inv"] = 1.0


def _validate_simulation(sim: dict) -> None:
    from .._integrate import METHODS
    from .._problem import FORMS

    for k, v in _SIM_DEFAULTS.items():
        sim.setdefault(k, v)
    _required(sim, ("n_particles", "n_steps", "dt"), "simulation")
    for k in ("n_particles", "n_steps"):
        sim[k] = _num(sim[k], f"simulation.{k}", positive=True, integer=True)
    sim["dt"] = _num(sim["dt"], "simulation.dt", positive=True)
    for k in ("seed", "burn_in"):
        sim[k] = _num(sim[k], f"simulation.{k}", nonneg=True, integer=True)
    for k in ("save_every", "chunk_size", "checkpoint_every"):
        if sim[k] is not None:
            sim[k] = _num(sim[k], f"simulation.{k}", positive=True, integer=True)
    with _api_check("simulation"):
        check_save_every(sim["save_every"], sim["n_steps"])
    forms = sim["form"] if isinstance(sim["form"], list) else [sim["form"]]
    if not forms:
        raise ConfigError("simulation.form: empty list")
    for f in forms:
        if f not in FORMS:
            raise ConfigError(f"simulation.form: expected one of {FORMS}, got {f!r}")
    sim["form"] = forms
    if sim["method"] not in METHODS:
        raise ConfigError(f"simulation.method: expected one of {METHODS}, got {sim['method']!r}")
    if sim["method"] == "diffrax":
        for k in ("chunk_size", "checkpoint_every"):
            if sim[k] is not None:
                raise ConfigError(f"simulation.{k}: not supported with method = 'diffrax' (it runs outside the "
                                  "compiled loop, in one call)")
    if sim["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"simulation.dtype: expected 'float32' or 'float64', got {sim['dtype']!r}")


def _validate_analysis(ana: dict) -> None:
    ana["bins"] = _num(ana.get("bins", 40), "analysis.bins", positive=True, integer=True)
    ana["exact"] = ana.get("exact", True)
    if not isinstance(ana["exact"], bool):
        raise ConfigError(f"analysis.exact: expected true or false, got {ana['exact']!r}")
    if "box" in ana:
        box = np.asarray(ana["box"], dtype=float) if _is_numeric_nested(ana["box"]) else None
        if box is None or box.shape != (2, 2) or not np.all(np.isfinite(box)) or np.any(box[:, 1] <= box[:, 0]):
            raise ConfigError("analysis.box: expected [[x0, x1], [y0, y1]] with x0 < x1 and y0 < y1")


def _validate_output(outp: dict) -> None:
    for k in ("trajectory", "figure"):
        outp.setdefault(k, True)
        if not isinstance(outp[k], bool):
            raise ConfigError(f"output.{k}: expected true or false, got {outp[k]!r}")


def quick_config(cfg: dict) -> dict:
    """A validated config shrunk to seconds (<= 1000 particles, a few hundred steps; chain
    experiments: a few hundred chains or a few dozen epochs, see :func:`_quick_chains`)."""
    if experiment_kind(cfg) != "ensemble":
        return _quick_chains(cfg)
    out = copy.deepcopy(cfg)
    sim = out["simulation"]
    sim["n_particles"] = min(sim["n_particles"], 1000)
    if sim["save_every"]:
        sim["save_every"] = min(sim["save_every"], 50)
        sim["n_steps"] = 2 * sim["save_every"]
    else:
        sim["n_steps"] = min(sim["n_steps"], 100)
    sim["burn_in"] = min(sim["burn_in"], 100)
    if sim["checkpoint_every"]:
        sim["checkpoint_every"] = min(sim["checkpoint_every"], 100)
    return out


def _is_numeric_nested(v) -> bool:
    try:
        np.asarray(v, dtype=float)
        return True
    except (TypeError, ValueError):
        return False


def _resolve_factory(spec: str):
    mod_name, _, fn_name = spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - any import failure is a config error
        raise ConfigError(f"problem.factory: cannot import module {mod_name!r} ({type(e).__name__}: {e})") from None
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise ConfigError(f"problem.factory: module {mod_name!r} has no callable {fn_name!r}")
    return fn


def build_problem(cfg: dict):
    """The problem object described by a validated config."""
    from .. import problems
    from .._problem import AbstractProblem

    prob = cfg["problem"]
    kind = prob["kind"]
    if kind == "rotating_double_well":
        return problems.rotating_double_well(prob["lam"])
    if kind == "linear":
        try:
            return problems.linear(prob["F"], prob["D"])
        except ValueError as e:
            raise ConfigError(f"problem.{e}") from None
    if kind == "anisotropic_double_well":
        return problems.anisotropic_double_well(prob["beta_inv"], a=prob["a"], q0=prob["q0"], q1=prob["q1"])
    fn = _resolve_factory(prob["factory"])
    try:
        p = fn(**prob.get("args", {}))
    except Exception as e:  # noqa: BLE001
        raise ConfigError(f"problem.factory: {prob['factory']} raised {type(e).__name__}: {e}") from None
    if not isinstance(p, AbstractProblem):
        raise ConfigError(f"problem.factory: {prob['factory']} must return an sdesim problem, got {type(p).__name__}")
    for f in cfg["simulation"]["form"]:
        if f != "ito" and not p.has_atype:
            raise ConfigError(f"simulation.form: {f!r} needs a problem with Phi and Q; the factory's problem has none")
    return p


# ---------------------------------------------------------------------------
# chain experiments: [experiment] kind = "toy2d" | "longrun"
# ---------------------------------------------------------------------------

_CHAIN_SCHEMA: dict[str, dict[str, set]] = {
    "toy2d": {
        "experiment": {"kind"},
        "problem": {"n_data", "ratio", "sigma", "v_scale", "x_true", "seed"},
        "temperature": {"lr", "batch"},
        "simulation": {"sampling", "n_chains", "n_snapshots", "spacing", "burn_in", "seed", "dtype"},
        "analysis": {"bins", "fp_cells", "current_steps", "n_boot"},
        "output": {"trajectory", "figure"},
    },
    "longrun": {
        "experiment": {"kind"},
        "temperature": {"lr", "batch"},
        "simulation": {"sampling", "kernels", "epochs", "burn_in_epochs", "n_chains", "sgld_chains",
                       "chunk_epochs", "seed"},
        "analysis": {"max_lag", "f_cut"},
        "output": {"trajectory", "figure"},
    },
}

#: The SGD sampling scheme each chain experiment runs. ``sdesim.experiments.compare_2d``
#: uses sampling with replacement (one-step covariance ``D / b``, the SDE's)
#: and ``_longrun.longrun`` epoch-wise shuffling; neither takes another scheme.
_CHAIN_SAMPLING = {"toy2d": "replacement", "longrun": "shuffle"}
_TOY2D_DEFAULTS = dict(n_data=40, ratio=3.0, sigma=1.0, v_scale=0.4, x_true=[0.5, -0.5], seed=0)
_LONGRUN_KERNELS = ("sgd", "sgld")
#: ``sdesim.analysis.low_frequency_test``'s default cut: 5 % of the Nyquist frequency (1/epoch units).
_DEFAULT_F_CUT = 0.025


def _validate_chains(cfg: dict, kind: str) -> dict:
    """Validate a chain-experiment config (schema in the module docstring); return it normalised."""
    _check_keys(cfg, _CHAIN_SCHEMA[kind], required=("temperature", "simulation"))
    out = copy.deepcopy(cfg)
    for section in _CHAIN_SCHEMA[kind]:
        out.setdefault(section, {})
    out["experiment"] = {"kind": kind}
    if kind == "toy2d":
        _validate_toy2d(out)
    else:
        _validate_longrun(out)
    _validate_output(out["output"])
    return out


def _int(table: dict, key: str, section: str, *, default=None, minimum: int = 1):
    """``table[key]`` (or ``default``) as an integer >= ``minimum``; ``None`` stays ``None``."""
    value = table.get(key, default)
    if value is None:
        table[key] = None
        return None
    field = f"{section}.{key}"
    value = _num(value, field, integer=True)
    if value < minimum:
        raise ConfigError(f"{field}: must be >= {minimum}, got {value!r}")
    table[key] = value
    return value


def _required(table: dict, keys, section: str) -> None:
    for k in keys:
        if k not in table:
            raise ConfigError(f"{section}.{k}: required")


def _check_sampling(sim: dict, kind: str) -> None:
    from ..chains._chains import SAMPLINGS

    want = _CHAIN_SAMPLING[kind]
    got = sim.setdefault("sampling", want)
    if not isinstance(got, str) or got not in SAMPLINGS:
        raise ConfigError(f"simulation.sampling: expected one of {SAMPLINGS}, got {got!r}")
    if got != want:
        raise ConfigError(f"simulation.sampling: the {kind} experiment runs SGD with {want!r} sampling only, got {got!r}")


def _chain_temperature(temp: dict, n_data: int, what: str) -> None:
    """``lr`` and ``batch`` (required; ``beta^-1 = lr / (2 batch)``), ``batch <= n_data``."""
    _required(temp, ("lr", "batch"), "temperature")
    temp["lr"] = _num(temp["lr"], "temperature.lr", positive=True)
    batch = _int(temp, "batch", "temperature")
    if batch > n_data:
        raise ConfigError(f"temperature.batch: must be <= {what} = {n_data}, got {batch}")


def _validate_toy2d(cfg: dict) -> None:
    prob = cfg["problem"]
    for k, v in _TOY2D_DEFAULTS.items():
        prob.setdefault(k, copy.deepcopy(v))
    n_data = _int(prob, "n_data", "problem", minimum=4)
    if n_data % 2:
        raise ConfigError(f"problem.n_data: must be even (examples come in partner pairs), got {n_data}")
    for k in ("ratio", "sigma", "v_scale"):
        prob[k] = _num(prob[k], f"problem.{k}", positive=True)
    xt = prob["x_true"]
    if not isinstance(xt, list) or len(xt) != 2:
        raise ConfigError(f"problem.x_true: expected a list of 2 numbers, got {xt!r}")
    prob["x_true"] = [_num(v, "problem.x_true") for v in xt]
    _int(prob, "seed", "problem", minimum=0)
    _chain_temperature(cfg["temperature"], n_data, "problem.n_data")

    sim = cfg["simulation"]
    _check_sampling(sim, "toy2d")
    _required(sim, ("n_chains", "n_snapshots"), "simulation")
    n_chains = _int(sim, "n_chains", "simulation", minimum=2)
    _int(sim, "n_snapshots", "simulation")
    _int(sim, "spacing", "simulation")
    _int(sim, "burn_in", "simulation", minimum=0)
    _int(sim, "seed", "simulation", default=0, minimum=0)
    sim.setdefault("dtype", "float64")
    if sim["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"simulation.dtype: expected 'float32' or 'float64', got {sim['dtype']!r}")

    ana = cfg["analysis"]
    bins = _int(ana, "bins", "analysis", default=40, minimum=2)
    fp_cells = _int(ana, "fp_cells", "analysis", default=3 * bins)
    if fp_cells % bins:
        raise ConfigError(f"analysis.fp_cells: must be a multiple of analysis.bins = {bins}, got {fp_cells}")
    current = _int(ana, "current_steps", "analysis", default=200, minimum=0)
    if current % 2 or current == 2:
        raise ConfigError(f"analysis.current_steps: must be 0 (skip) or even and >= 4 (saved every 2 steps), got {current}")
    _int(ana, "n_boot", "analysis", default=30, minimum=2)
    if current and n_chains < 20:
        raise ConfigError(f"simulation.n_chains: must be >= 20 to measure the current (20 chain groups), got {n_chains}")


def _validate_longrun(cfg: dict) -> None:
    sim = cfg["simulation"]
    _check_sampling(sim, "longrun")
    _required(sim, ("epochs",), "simulation")
    epochs = _int(sim, "epochs", "simulation")
    _int(sim, "burn_in_epochs", "simulation", default=100, minimum=0)
    n_chains = _int(sim, "n_chains", "simulation", default=4)
    sgld = _int(sim, "sgld_chains", "simulation", default=n_chains)
    if sgld > n_chains:
        raise ConfigError(f"simulation.sgld_chains: must be <= simulation.n_chains = {n_chains}, got {sgld}")
    _int(sim, "chunk_epochs", "simulation", default=min(250, epochs))
    seed = _int(sim, "seed", "simulation", default=0, minimum=0)
    kernels = sim.setdefault("kernels", list(_LONGRUN_KERNELS))
    if (not isinstance(kernels, list) or not kernels or len(set(map(str, kernels))) != len(kernels)
            or any(k not in _LONGRUN_KERNELS for k in kernels)):
        raise ConfigError(f"simulation.kernels: expected a non-empty list of distinct names from {_LONGRUN_KERNELS}, "
                          f"got {kernels!r}")
    _chain_temperature(cfg["temperature"], _digits_n_train(seed), "the number of training images")

    ana = cfg["analysis"]
    f_cut = ana.setdefault("f_cut", None)
    if f_cut is not None:
        f_cut = ana["f_cut"] = _num(f_cut, "analysis.f_cut", positive=True)
        if f_cut > 0.25:
            raise ConfigError(f"analysis.f_cut: must be <= 0.25 per epoch (half the Nyquist frequency), got {f_cut!r}")
    need = _min_epochs(f_cut)
    if epochs < need:
        raise ConfigError(f"simulation.epochs: the spectral tests need >= {need} epochs "
                          f"(f_cut = {f_cut or _DEFAULT_F_CUT} per epoch), got {epochs}")
    max_lag = _int(ana, "max_lag", "analysis")
    if max_lag is not None and max_lag >= epochs:
        raise ConfigError(f"analysis.max_lag: must be < simulation.epochs = {epochs}, got {max_lag}")


def _digits_n_train(seed: int) -> int:
    """Training images of the long run's data set (5-class 7x7 digits, split by ``seed``)."""
    from ..nn import load_digits

    return int(load_digits(classes=5, size=7, seed=seed).x_train.shape[0])


def _min_epochs(f_cut) -> int:
    """Fewest saved epochs whose increment periodogram has a frequency on each side of ``f_cut``.

    ``sdesim.analysis.low_frequency_test`` needs both (interior frequencies
    ``k / m``, ``0 < k / m < 1/2``, ``m = epochs - 1`` increments) and 8 time points.
    """
    f = _DEFAULT_F_CUT if f_cut is None else f_cut
    n = max(8, math.floor(1.0 / f))
    while True:
        step = 1.0 / (n - 1)  # as numpy's rfftfreq: k * (1 / m)
        k_high = (n - 2) // 2  # the largest k with k / m < 1/2
        if step <= f and k_high * step > f:
            return n
        n += 1


def _quick_chains(cfg: dict) -> dict:
    """Chain experiments in seconds: toy2d <= 400 chains x 10 snapshots; longrun <= 60 epochs x 1 chain."""
    out = copy.deepcopy(cfg)
    sim, ana = out["simulation"], out["analysis"]
    if experiment_kind(cfg) == "toy2d":
        sim["n_chains"] = min(sim["n_chains"], 400)
        sim["n_snapshots"] = min(sim["n_snapshots"], 10)
        ana["n_boot"] = min(ana["n_boot"], 10)
        ana["current_steps"] = min(ana["current_steps"], 40)
        ana["fp_cells"] = min(ana["fp_cells"], 2 * ana["bins"])
        return out
    epochs = min(sim["epochs"], max(60, _min_epochs(ana["f_cut"])))
    sim["epochs"] = epochs
    sim["burn_in_epochs"] = min(sim["burn_in_epochs"], 2)
    sim["n_chains"] = 1  # each chain costs a noise-power estimate (seconds) before the stream starts
    sim["sgld_chains"] = 1
    sim["chunk_epochs"] = min(sim["chunk_epochs"], 20)
    if ana["max_lag"] is not None:
        ana["max_lag"] = min(ana["max_lag"], max(1, epochs // 4))
    return out
