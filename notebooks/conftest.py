"""pytest runs every notebook here with nbval (pytest.ini: testpaths, --nbval-lax).

Each run gets a data folder of its own, so a notebook never writes into the repo: ``SCALP_NOTEBOOK_DIR``
points :func:`engine.notebook.setup` at a temporary folder before any kernel starts (nbval's kernels
inherit this process's environment), and it is removed when the session ends. The numbered notebooks
take more than a few seconds each and are marked ``slow``.
"""
from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_made: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if not os.environ.get("SCALP_NOTEBOOK_DIR"):
        folder = tempfile.mkdtemp(prefix="scalp-notebooks-")
        _made.append(folder)
        os.environ["SCALP_NOTEBOOK_DIR"] = folder


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _made:
        shutil.rmtree(folder, ignore_errors=True)
        if os.environ.get("SCALP_NOTEBOOK_DIR") == folder:
            del os.environ["SCALP_NOTEBOOK_DIR"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = getattr(item, "path", None)
        if path is not None and path.suffix == ".ipynb" and path.name[:1].isdigit():
            item.add_marker(pytest.mark.slow)
