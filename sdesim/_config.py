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
"""

from __future__ import annotations

import copy
import importlib
import math
import sys
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "DEFAULT_CONFIG", "load_config", "validate_config", "build_problem", "quick_config"]


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

_SCHEMA: dict[str, dict[str, Any]] = {
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


def validate_config(cfg: dict) -> dict:
    """Check every field; return a normalised copy (defaults filled in)."""
    if not isinstance(cfg, dict):
        raise ConfigError("config: expected a table")
    for section in cfg:
        if section not in _SCHEMA:
            raise ConfigError(f"{section}: unknown section (expected one of {sorted(_SCHEMA)})")
        if not isinstance(cfg[section], dict):
            raise ConfigError(f"{section}: expected a table")
        for key in cfg[section]:
            if key not in _SCHEMA[section]:
                raise ConfigError(f"{section}.{key}: unknown key (expected one of {sorted(_SCHEMA[section])})")
    for section in ("problem", "simulation"):
        if section not in cfg:
            raise ConfigError(f"{section}: missing section")
    out = copy.deepcopy(cfg)
    prob = out["problem"]
    kind = prob.get("kind")
    if kind not in _KINDS:
        raise ConfigError(f"problem.kind: expected one of {_KINDS}, got {kind!r}")
    if kind == "rotating_double_well":
        prob["lam"] = _num(prob.get("lam", 1.5), "problem.lam")
    elif kind == "linear":
        for k in ("F", "D"):
            if k not in prob:
                raise ConfigError(f"problem.{k}: required for kind = 'linear'")
        F = _matrix(prob["F"], "problem.F")
        D = _matrix(prob["D"], "problem.D")
        if D.shape != F.shape:
            raise ConfigError(f"problem.D: expected shape {F.shape} to match F, got {D.shape}")
        if not np.allclose(D, D.T):
            raise ConfigError("problem.D: matrix must be symmetric")
        if np.linalg.eigvalsh(D).min() < -1e-10 * max(1.0, np.abs(D).max()):
            raise ConfigError("problem.D: matrix must be positive semi-definite")
        if np.min(np.linalg.eigvals(F).real) <= 0:
            raise ConfigError("problem.F: -F must be stable (eigenvalues of F with positive real part) for a stationary state")
    elif kind == "anisotropic_double_well":
        prob["beta_inv"] = _num(prob.get("beta_inv", 0.5), "problem.beta_inv", positive=True)
        for k, dflt in (("a", 0.3), ("q0", 0.5), ("q1", 0.3)):
            prob[k] = _num(prob.get(k, dflt), f"problem.{k}")
    elif kind == "python":
        fac = prob.get("factory")
        if not isinstance(fac, str) or ":" not in fac:
            raise ConfigError(f"problem.factory: expected 'package.module:function', got {fac!r}")
        if "args" in prob and not isinstance(prob["args"], dict):
            raise ConfigError("problem.args: expected a table of keyword arguments")
        _resolve_factory(fac)  # import now, so a typo fails before any work

    temp = out.setdefault("temperature", {})
    if "beta_inv" in temp:
        if any(k in temp for k in ("lr", "batch", "n_data", "replacement")):
            raise ConfigError("temperature: give either beta_inv or lr/batch(/n_data/replacement), not both")
        temp["beta_inv"] = _num(temp["beta_inv"], "temperature.beta_inv", positive=True)
    elif "lr" in temp or "batch" in temp:
        from ._temperature import temperature

        lr = _num(temp.get("lr"), "temperature.lr", positive=True) if "lr" in temp else None
        if lr is None:
            raise ConfigError("temperature.lr: required with batch")
        if "batch" not in temp:
            raise ConfigError("temperature.batch: required with lr")
        batch = _num(temp["batch"], "temperature.batch", positive=True, integer=True)
        n_data = temp.get("n_data")
        if n_data is not None:
            n_data = _num(n_data, "temperature.n_data", positive=True, integer=True)
        repl = temp.get("replacement", True)
        if not isinstance(repl, bool):
            raise ConfigError(f"temperature.replacement: expected true or false, got {repl!r}")
        try:
            temp["beta_inv"] = temperature(lr, batch, n_data, repl)
        except ValueError as e:
            raise ConfigError(f"temperature.{e}") from None
        if temp["beta_inv"] <= 0:
            raise ConfigError("temperature.batch: batch = n_data without replacement gives zero temperature")
    elif kind == "anisotropic_double_well":
        temp["beta_inv"] = prob["beta_inv"]
    else:
        temp["beta_inv"] = 1.0

    sim = out["simulation"]
    for k, v in _SIM_DEFAULTS.items():
        sim.setdefault(k, v)
    for k in ("n_particles", "n_steps", "dt"):
        if k not in sim:
            raise ConfigError(f"simulation.{k}: required")
    sim["n_particles"] = _num(sim["n_particles"], "simulation.n_particles", positive=True, integer=True)
    sim["n_steps"] = _num(sim["n_steps"], "simulation.n_steps", positive=True, integer=True)
    sim["dt"] = _num(sim["dt"], "simulation.dt", positive=True)
    sim["seed"] = _num(sim["seed"], "simulation.seed", nonneg=True, integer=True)
    sim["burn_in"] = _num(sim["burn_in"], "simulation.burn_in", nonneg=True, integer=True)
    if sim["save_every"] is not None:
        sim["save_every"] = _num(sim["save_every"], "simulation.save_every", positive=True, integer=True)
        if sim["n_steps"] % sim["save_every"]:
            raise ConfigError(f"simulation.save_every: must divide n_steps={sim['n_steps']}")
    if sim["chunk_size"] is not None:
        sim["chunk_size"] = _num(sim["chunk_size"], "simulation.chunk_size", positive=True, integer=True)
    if sim["checkpoint_every"] is not None:
        sim["checkpoint_every"] = _num(sim["checkpoint_every"], "simulation.checkpoint_every", positive=True, integer=True)
    forms = sim["form"] if isinstance(sim["form"], list) else [sim["form"]]
    from ._integrate import METHODS
    from ._problem import FORMS

    if not forms:
        raise ConfigError("simulation.form: empty list")
    for f in forms:
        if f not in FORMS:
            raise ConfigError(f"simulation.form: expected one of {FORMS}, got {f!r}")
    sim["form"] = forms
    if sim["method"] not in METHODS:
        raise ConfigError(f"simulation.method: expected one of {METHODS}, got {sim['method']!r}")
    if sim["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"simulation.dtype: expected 'float32' or 'float64', got {sim['dtype']!r}")

    ana = out.setdefault("analysis", {})
    ana["bins"] = _num(ana.get("bins", 40), "analysis.bins", positive=True, integer=True)
    ana["exact"] = ana.get("exact", True)
    if not isinstance(ana["exact"], bool):
        raise ConfigError(f"analysis.exact: expected true or false, got {ana['exact']!r}")
    if "box" in ana:
        box = np.asarray(ana["box"], dtype=float) if _is_numeric_nested(ana["box"]) else None
        if box is None or box.shape != (2, 2) or not np.all(np.isfinite(box)) or np.any(box[:, 1] <= box[:, 0]):
            raise ConfigError("analysis.box: expected [[x0, x1], [y0, y1]] with x0 < x1 and y0 < y1")
    outp = out.setdefault("output", {})
    for k in ("trajectory", "figure"):
        outp.setdefault(k, True)
        if not isinstance(outp[k], bool):
            raise ConfigError(f"output.{k}: expected true or false, got {outp[k]!r}")
    return out


def quick_config(cfg: dict) -> dict:
    """A validated config shrunk to seconds (<= 1000 particles, a few hundred steps)."""
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
    from . import problems
    from ._problem import AbstractProblem

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
