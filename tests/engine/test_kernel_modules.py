"""Kernel modules (``*_nb.py``) import only numpy, numba, the standard library and other kernels.

STYLE §1/§3 and DESIGN "engine/ layout": kernels take arrays and numbers, so they must not reach
pandas, configs or the API around them. The metrics read the kernel's statistics record by field
name from the records module, never from the kernel module itself.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
KERNELS = sorted(ENGINE.rglob("*_nb.py"))


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top in ("numpy", "numba", "__future__") or top in sys.stdlib_module_names:
        return True
    return top == "engine" and module.split(".")[-1].endswith("_nb")


def test_there_are_kernel_modules():
    assert {p.name for p in KERNELS} >= {"kernel_nb.py", "core_nb.py", "fills_nb.py", "records_nb.py", "rules_nb.py"}


@pytest.mark.parametrize("path", KERNELS, ids=lambda p: str(p.relative_to(ENGINE)))
def test_kernel_module_imports_only_numpy_numba_stdlib_and_kernels(path):
    bad = [m for m in _imports(path) if not _allowed(m)]
    assert not bad, f"{path.relative_to(ENGINE)} imports {bad}"


def test_metrics_do_not_import_the_kernel_module():
    assert not [m for m in _imports(ENGINE / "backtest" / "metrics.py") if m.startswith("engine.backtest.kernel")]
