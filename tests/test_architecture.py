"""The shape of the code base (DESIGN.md, "engine/ layout"): import directions and module size.

Read from the source with ``ast`` (nothing is imported), so a violation names the file and line.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ENGINE = REPO / "engine"
STDLIB = set(sys.stdlib_module_names)
#: Lines a module may have (DESIGN.md: one idea per module, under about 500 lines).
MAX_LINES = 520


def _modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "sample" not in p.parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, at any depth (function-level too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            if node.module and not node.level:  # `from engine import data` imports engine.data
                out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _violations(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(REPO)}:{line} imports {name}"
            for p in paths for line, name in _imports(p) if _under(name, *forbidden)]


def test_kernels_import_only_numpy_numba_and_other_kernels():
    kernels = [p for p in _modules(ENGINE) if p.name.endswith("_nb.py")]
    assert len(kernels) >= 3, "expected the indicator, rule and simulation kernels"
    bad = []
    for p in kernels:
        for line, name in _imports(p):
            top = name.split(".")[0]
            ok = top in ("numpy", "numba", "__future__") or top in STDLIB or (
                top == "engine" and name.rsplit(".", 1)[-1].endswith("_nb")) or (
                top == "engine" and any(part.endswith("_nb") for part in name.split(".")[:-1]))
            if not ok:
                bad.append(f"{p.relative_to(REPO)}:{line} imports {name}")
    assert not bad, "kernels import only numpy, numba, the standard library and other *_nb modules:\n" + "\n".join(bad)


def test_engine_never_imports_jobs_or_tools():
    bad = _violations(_modules(ENGINE), ("jobs", "tools", "bot"))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package, forbidden", [
    ("data", ("engine.research", "engine.execution", "engine.desk", "engine.backtest", "engine.cycle",
              "engine.promotion", "engine.publish")),
    ("exchange", ("engine.research", "engine.execution", "engine.desk", "engine.data", "engine.backtest",
                  "engine.cycle")),
    ("strategy", ("engine.research", "engine.execution", "engine.desk", "engine.backtest", "engine.data",
                  "engine.cycle", "engine.config")),
    ("backtest", ("engine.research", "engine.execution", "engine.desk", "engine.cycle", "engine.promotion")),
    ("execution", ("engine.research", "engine.desk", "engine.cycle")),
    ("publish", ("engine.research", "engine.backtest", "engine.execution", "engine.desk", "engine.cycle")),
])
def test_packages_import_one_way(package, forbidden):
    bad = _violations(_modules(ENGINE / package), forbidden)
    assert not bad, f"engine.{package} must not import {', '.join(forbidden)}:\n" + "\n".join(bad)


def test_this_test_sees_a_violation(tmp_path, monkeypatch):
    # the checker itself: a kernel importing pandas and a data module importing research are caught
    fake = tmp_path / "engine" / "data"
    fake.mkdir(parents=True)
    (fake / "bad_nb.py").write_text("import pandas\nfrom engine.research import search\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    paths = [fake / "bad_nb.py"]
    assert _violations(paths, ("engine.research",)) == [f"engine/data/bad_nb.py:2 imports engine.research",
                                                        "engine/data/bad_nb.py:2 imports engine.research.search"]


def test_no_module_over_the_size_budget():
    too_big = [f"{p.relative_to(REPO)}: {n} lines" for root in (ENGINE, REPO / "jobs", REPO / "tools")
               for p in _modules(root) if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES]
    too_big += [f"bot.py: {n} lines"] if (n := len((REPO / "bot.py").read_text().splitlines())) > MAX_LINES else []
    assert not too_big, "one idea per module, under about 500 lines:\n" + "\n".join(too_big)


def test_every_package_has_a_short_public_surface():
    # an __init__ re-exports and documents; its code (the docstring not counted) stays short
    for init in ENGINE.rglob("__init__.py"):
        if "sample" in init.parts or init.parent.name == "config":
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = tree.body[0].end_lineno if tree.body and isinstance(tree.body[0], ast.Expr) else 0
        code = len(init.read_text(encoding="utf-8").splitlines()) - doc
        assert code <= 60, f"{init.relative_to(REPO)}: {code} lines of code; an __init__ is a public surface"


def test_metrics_read_the_kernel_statistics_by_name_never_from_the_kernel_module():
    bad = _violations([ENGINE / "backtest" / "metrics.py"], ("engine.backtest.kernel_nb", "engine.backtest.core_nb"))
    assert not bad, "\n".join(bad)
