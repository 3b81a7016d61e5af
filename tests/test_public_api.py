"""The public surface of sdesim, and the shape of its import graph.

* Docs (python blocks of README.md and docs/*.md), tests, scripts and configs
  use public names only: no module or name of sdesim whose last dotted part
  starts with one underscore, whether reached by an ``import`` statement, a
  ``from ... import`` of such a name, or an attribute chain or string starting
  with ``sdesim.`` (comments of Python files are ignored; strings are not, since
  they may be code run in a subprocess or a config's ``module:function``).
* Importing sdesim and its public subpackages leaves ``XLA_FLAGS`` as it was
  (fresh interpreter, clean environment, the variable unset and set).
* ``sdesim.chains``, ``.analysis``, ``.experiments``, ``.nn``, ``.cli``, ``.noise``
  are real modules, and every ``__init__.py`` below ``sdesim/`` holds only a
  docstring and imports (no ``__all__``, no code).
* The graph of module-level imports between sdesim's files (relative and
  absolute; imports inside functions and ``if TYPE_CHECKING:`` blocks do not
  count) has no cycle.
"""

import ast
import graphlib
import importlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import tokenize
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sdesim"
PUBLIC_SUBMODULES = ("chains", "analysis", "experiments", "nn", "cli", "noise")
SCANNED_DIRS = ("tests", "scripts", "configs")

# --------------------------------------------------------------------------- private names


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


_DOTTED = re.compile(r"(?<![\w.])sdesim((?:\.\w+)+)")
_FROM_IMPORT = re.compile(r"\bfrom\s+(sdesim(?:\.\w+)*)\s+import\s+(\([^)]*\)|[^\n;]*)")


def _without_comments(source):
    """Python source with its comments blanked (strings kept); the text itself if it does not tokenize."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return source
    lines = source.splitlines(keepends=True)
    for tok in tokens:
        if tok.type == tokenize.COMMENT:
            (row, col), (_, end) = tok.start, tok.end
            line = lines[row - 1]
            lines[row - 1] = line[:col] + " " * (end - col) + line[end:]
    return "".join(lines)


def private_uses(text):
    """Every use of an underscore module or name of sdesim in ``text``, as strings."""
    found = []
    for m in _DOTTED.finditer(text):
        parts = m.group(1).split(".")[1:]
        if any(_is_private(p) for p in parts):
            found.append("sdesim" + m.group(1))
    for m in _FROM_IMPORT.finditer(text):
        names = m.group(2).strip().strip("()").replace("\n", " ")
        for item in names.split(","):
            name = item.strip().split(" as ")[0].strip().rstrip("\\").strip()
            if name and _is_private(name):
                found.append(f"from {m.group(1)} import {name}")
    return found


def _python_blocks(path):
    """Sources of the ```python blocks of a Markdown file."""
    blocks, current = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        if current is None:
            if line.strip() == "```python":
                current = []
        elif line.strip() == "```":
            blocks.append(textwrap.dedent("\n".join(current)) + "\n")
            current = None
        else:
            current.append(line)
    return blocks


def _scanned_texts():
    """``{label: text}`` for the docs' python blocks and the files under SCANNED_DIRS."""
    texts = {}
    for md in [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md")):
        for k, block in enumerate(_python_blocks(md)):
            texts[f"{md.relative_to(ROOT).as_posix()} (python block {k + 1})"] = _without_comments(block)
    for d in SCANNED_DIRS:
        for path in sorted((ROOT / d).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if path.suffix == ".py":
                text = _without_comments(text)
            texts[path.relative_to(ROOT).as_posix()] = text
    return texts


def test_private_use_detector():
    s = "sdesim"  # spelled apart so that this file passes its own scan
    assert private_uses(f"from {s}._a import b") == [f"{s}._a"]
    assert private_uses(f"import {s}._a as m") == [f"{s}._a"]
    assert private_uses(f"x = {s}._a.f(1)") == [f"{s}._a.f"]
    assert private_uses(f"from {s}.chains._c import f") == [f"{s}.chains._c"]
    assert private_uses(f"from {s} import (\n    chains,\n    _a as a,\n)") == [f"from {s} import _a"]
    assert private_uses(f"from {s}.cli import run_experiment, _b") == [f"from {s}.cli import _b"]
    assert private_uses(f'factory = "{s}._a:make"') == [f"{s}._a"]
    assert private_uses(f"from {s} import noise as _noise; {s}.__version__") == []
    assert private_uses(f"import {s}.chains, {s}.nn\nmy_{s}._x = 1") == []
    assert _without_comments(f"import {s}  # not {s}._a\n").rstrip() == f"import {s}"


_TEXTS = _scanned_texts()


@pytest.mark.parametrize("label", sorted(_TEXTS))
def test_public_names_only(label):
    uses = private_uses(_TEXTS[label])
    assert not uses, f"{label} uses private parts of sdesim (use the public names): {sorted(set(uses))}"


# --------------------------------------------------------------------------- import side effects

_IMPORT_ALL = (
    "import json, os\n"
    "before = os.environ.get('XLA_FLAGS')\n"
    "import sdesim\n"
    "after_sdesim = os.environ.get('XLA_FLAGS')\n"
    "import " + ", ".join(f"sdesim.{m}" for m in PUBLIC_SUBMODULES) + "\n"
    "print(json.dumps([before, after_sdesim, os.environ.get('XLA_FLAGS')]))\n"
)


@pytest.mark.parametrize("xla_flags", [None, "--xla_cpu_enable_fast_math=false"])
def test_import_leaves_xla_flags_alone(xla_flags, tmp_path):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", str(tmp_path)),
           "PYTHONPATH": str(ROOT)}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    proc = subprocess.run([sys.executable, "-c", _IMPORT_ALL], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    before, after_sdesim, after_all = json.loads(proc.stdout.strip().splitlines()[-1])
    assert before == xla_flags
    assert after_sdesim == xla_flags, f"import sdesim changed XLA_FLAGS: {before!r} -> {after_sdesim!r}"
    assert after_all == xla_flags, f"importing sdesim's subpackages changed XLA_FLAGS: {before!r} -> {after_all!r}"


# --------------------------------------------------------------------------- subpackages


@pytest.mark.parametrize("name", PUBLIC_SUBMODULES)
def test_public_submodule_is_a_real_module(name):
    import sdesim

    mod = importlib.import_module(f"sdesim.{name}")
    assert isinstance(mod, types.ModuleType)
    assert sys.modules[f"sdesim.{name}"] is mod
    assert getattr(sdesim, name) is mod
    assert Path(mod.__file__).resolve().is_relative_to(PACKAGE.resolve())
    assert not _is_private(name)


def _package_inits():
    return sorted(p for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE and "__pycache__" not in p.parts)


@pytest.mark.parametrize("init", _package_inits(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_subpackage_init_is_import_only(init):
    tree = ast.parse(init.read_text(encoding="utf-8"), filename=str(init))
    bad = []
    for k, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if k == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            continue
        bad.append(f"line {node.lineno}: {ast.unparse(node).splitlines()[0][:80]}")
    assert not bad, f"{init.relative_to(ROOT)} must hold only a docstring and imports; also has: {bad}"


#: documented aliases that may share a name with another public class until they are removed
ALIASES = {"Linear"}  # sdesim.Linear = sdesim.OrnsteinUhlenbeck (until 0.3); sdesim.nn.Linear is a layer


def test_no_two_public_classes_share_a_name():
    """A name a user types means one class wherever it is exported (``sdesim.X`` vs ``sdesim.nn.X``)."""
    seen, clash = {}, []
    for m in ["sdesim", "sdesim.problems", "sdesim.diffusion", "sdesim.analysis", "sdesim.chains",
              "sdesim.experiments", "sdesim.nn", "sdesim.cli"]:
        mod = importlib.import_module(m)
        for k, v in vars(mod).items():
            if k.startswith("_") or not isinstance(v, type) or k in ALIASES:
                continue
            if k in seen and seen[k][1] is not v:
                clash.append(f"{seen[k][0]}.{k} vs {m}.{k}")
            seen.setdefault(k, (m, v))
    assert not clash, clash


@pytest.mark.parametrize("name", ["problems", "diffusion", "noise"])
def test_public_module_exposes_only_its_names(name):
    """A public top-level module re-exports; its namespace holds no helper imports (``jnp``, ``Optional``)."""
    mod = importlib.import_module(f"sdesim.{name}")
    tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
    for k, node in enumerate(tree.body):
        if k == 0 and isinstance(node, ast.Expr):
            continue
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["__all__"]:
            continue
        assert isinstance(node, ast.ImportFrom) and node.level == 1 \
            and all(a.asname == a.name for a in node.names), f"sdesim/{name}.py line {node.lineno}"
    public = sorted(k for k in vars(mod) if not k.startswith("_"))
    assert public == sorted(getattr(mod, "__all__", public))


# --------------------------------------------------------------------------- import cycles


def _modules():
    """``{dotted name: path}`` of sdesim's files (a package is named by its ``__init__.py``)."""
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level_imports(tree):
    """Import nodes executed when the module is imported (not in functions or TYPE_CHECKING blocks)."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def import_graph():
    """``{module: set of sdesim modules it imports at module level}``."""
    mods = _modules()
    graph = {name: set() for name in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # ``from P import m`` needs the submodule P.m, any other name needs P itself
                subs = [f"{source}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in mods]
                if len(targets) < len(subs):
                    targets.append(source)
            for target in targets:
                if target in mods and target != name:
                    graph[name].add(target)
    return graph


def test_import_graph_sees_the_package():
    graph = import_graph()
    assert "sdesim.analysis" in graph["sdesim"]
    assert all(name == "sdesim" or name.startswith("sdesim.") for name in graph)


def test_no_import_cycles():
    graph = import_graph()
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        cycle = err.args[1]
        pytest.fail("import cycle between sdesim's modules: " + " -> ".join(reversed(cycle)))
