"""The first cell of every notebook: where the repo is, what to install, where data goes, how figures show.

:func:`setup` is what the notebooks' setup cell calls after putting the repo on ``sys.path`` (that
cell finds the repo root, or clones it when the notebook runs alone, e.g. in Colab). It works the
same in Colab, Paperspace Gradient, VS Code and local Jupyter, and prints what it chose:

- **packages**: the missing requirements of ``requirements.txt``, installed by ``sitecustomize.py``
  (the same hook ``bot.py`` runs; ``SCALP_NO_AUTOINSTALL=1`` skips it);
- **data folder** (the notebooks' ``scalp_data``, with ``data/``, ``reports/``, ``logs/``, ``public/``
  and ``metrics/`` inside): the `data_root` argument, else ``SCALP_NOTEBOOK_DIR``, else
  ``/notebooks/scalp_data`` on Paperspace when ``/notebooks`` (its persistent storage) exists, else the
  repo's ``notebooks/scalp_data``. The runtime folders become ``SCALP_DATA_DIR``, ``SCALP_REPORTS_DIR``,
  ``SCALP_LOGS_DIR``, ``SCALP_PUBLIC_DIR`` and ``SCALP_METRICS_DIR`` (one already set in the environment
  is kept unless `data_root` is given), so :func:`engine.config.load_config` in a cell reads the same
  folders;
- **plotly renderer**: ``colab`` in Colab; elsewhere ``plotly_mimetype+notebook_connected``, so the
  figure is stored both as plotly JSON (JupyterLab, Notebook 7, VS Code draw it natively) and as HTML
  that loads plotly.js from its CDN (classic Notebook, nbconvert's HTML export, any viewer online);
  ``offline_figures=True`` embeds plotly.js instead (``notebook``: larger files, no network needed).
  ``PLOTLY_RENDERER`` in the environment, or the `renderer` argument, wins;
- **dry run** (``dry_run=True``, the execution notebook): ``DRY_RUN=1``, ``ALLOW_LIVE=0`` and
  ``SCALP_EXEC_ENABLED=false`` are forced in this process, so no guard can let a real order leave.

This module imports only the standard library at load time: it runs before the requirements are
installed.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

#: The repo root of this checkout.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Paperspace Gradient's persistent folder; the data folder goes inside it when it exists.
PAPERSPACE_STORAGE = Path("/notebooks")
#: Environment variable naming the notebooks' data folder (tests and benchmarks point it at a temporary one).
DATA_ROOT_ENV = "SCALP_NOTEBOOK_DIR"
#: Runtime folders inside the data folder, by the environment variable that points at each.
RUNTIME_FOLDERS = {"SCALP_DATA_DIR": "data", "SCALP_REPORTS_DIR": "reports", "SCALP_LOGS_DIR": "logs",
                   "SCALP_PUBLIC_DIR": "public", "SCALP_METRICS_DIR": "metrics"}
#: What ``dry_run=True`` forces: the execution tunables and the runtime switch.
DRY_RUN_ENV = {"DRY_RUN": "1", "ALLOW_LIVE": "0", "SCALP_EXEC_ENABLED": "false"}


@dataclass(frozen=True)
class NotebookEnv:
    """What :func:`setup` chose.

    Attributes
    ----------
    repo_root : Path
        The SCALP checkout the notebook runs on.
    host : str
        ``colab``, ``paperspace``, ``vscode``, ``jupyter`` or ``python`` (not in a notebook kernel).
    data_root : Path
        The notebooks' data folder; `why` says how it was chosen.
    data_dir, reports_dir, logs_dir, public_dir, metrics_dir : Path
        The runtime folders in use (``SCALP_*_DIR``), created.
    renderer : str
        The plotly default renderer set (``plotly.io.renderers.default``).
    installed : tuple of str
        Requirement lines installed by this call (empty when nothing was missing).
    dry_run : bool
        DRY_RUN, ALLOW_LIVE and exec_enabled forced to "no order can leave".
    why : str
        How the data folder was chosen.
    """

    repo_root: Path
    host: str
    data_root: Path
    data_dir: Path
    reports_dir: Path
    logs_dir: Path
    public_dir: Path
    metrics_dir: Path
    renderer: str
    installed: tuple[str, ...] = ()
    dry_run: bool = False
    why: str = ""

    def describe(self) -> str:
        """The lines :func:`setup` prints."""
        lines = [f"SCALP repo:     {self.repo_root}",
                 f"host:           {self.host}",
                 f"data folder:    {self.data_root} ({self.why})",
                 f"  candles:      {self.data_dir}",
                 f"  reports:      {self.reports_dir}",
                 f"plotly figures: renderer {self.renderer!r}",
                 f"packages:       {'installed ' + ', '.join(self.installed) if self.installed else 'all present'}"]
        if self.dry_run:
            lines.append("DRY_RUN forced: DRY_RUN=1, ALLOW_LIVE=0, exec_enabled false; no order can leave this notebook")
        return "\n".join(lines)


def detect_host(env: Mapping[str, str] | None = None, modules: Mapping[str, object] | None = None,
                shell: str | None = None) -> str:
    """Return where this kernel runs: ``colab``, ``paperspace``, ``vscode``, ``jupyter`` or ``python``.

    Colab: the ``google.colab`` module is loaded or ``COLAB_RELEASE_TAG`` / ``COLAB_NOTEBOOK_ID`` is
    set. Paperspace Gradient: any ``PAPERSPACE_*`` variable. VS Code: ``VSCODE_PID``. Jupyter: an
    IPython kernel (`shell` ``ZMQInteractiveShell``, read from IPython when not given).
    """
    env = os.environ if env is None else env
    modules = sys.modules if modules is None else modules
    if "google.colab" in modules or "COLAB_RELEASE_TAG" in env or "COLAB_NOTEBOOK_ID" in env:
        return "colab"
    if any(k.startswith("PAPERSPACE_") for k in env):
        return "paperspace"
    if "VSCODE_PID" in env:
        return "vscode"
    if shell is None:
        shell = _ipython_shell()
    return "jupyter" if shell == "ZMQInteractiveShell" else "python"


def _ipython_shell() -> str:
    if "IPython" not in sys.modules:
        return ""
    ip = sys.modules["IPython"].get_ipython()  # type: ignore[attr-defined]
    return type(ip).__name__ if ip is not None else ""


def choose_data_root(data_root: str | os.PathLike | None = None, *, host: str,
                     env: Mapping[str, str] | None = None, repo_root: Path = REPO_ROOT,
                     paperspace_storage: Path = PAPERSPACE_STORAGE) -> tuple[Path, str]:
    """Return the notebooks' data folder and why it was chosen (see the module docstring for the order)."""
    env = os.environ if env is None else env
    if data_root not in (None, ""):
        return Path(os.path.expanduser(str(data_root))).resolve(), "the data_root parameter"
    if env.get(DATA_ROOT_ENV):
        return Path(os.path.expanduser(env[DATA_ROOT_ENV])).resolve(), DATA_ROOT_ENV
    if host == "paperspace" and paperspace_storage.is_dir():
        return paperspace_storage / "scalp_data", f"Paperspace's persistent {paperspace_storage}"
    return repo_root / "notebooks" / "scalp_data", "the repo's folder"


def choose_renderer(host: str, *, renderer: str | None = None, offline_figures: bool = False,
                    env: Mapping[str, str] | None = None) -> str:
    """Return the plotly renderer for `host` (see the module docstring); `renderer` or ``PLOTLY_RENDERER`` wins."""
    env = os.environ if env is None else env
    if renderer:
        return renderer
    if env.get("PLOTLY_RENDERER"):
        return env["PLOTLY_RENDERER"]
    if host == "colab":
        return "colab"
    return "plotly_mimetype+" + ("notebook" if offline_figures else "notebook_connected")


def install_missing(repo_root: Path = REPO_ROOT) -> tuple[str, ...]:
    """Install the missing requirements of ``<repo_root>/requirements.txt`` through its ``sitecustomize.py``.

    Returns the requirement lines that were missing (and are now installed).

    Raises
    ------
    RuntimeError
        If pip could not install them (sitecustomize printed why).
    """
    spec = importlib.util.spec_from_file_location("scalp_sitecustomize", repo_root / "sitecustomize.py")
    if spec is None or spec.loader is None:
        return ()
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    requirements = repo_root / "requirements.txt"
    if os.environ.get("SCALP_NO_AUTOINSTALL") == "1" or not requirements.exists():
        return ()
    missing = tuple(hook.missing_requirements(requirements))
    if missing and not hook.ensure_requirements(requirements):
        raise RuntimeError(f"could not install {' '.join(missing)}; run: pip install -r {requirements}")
    importlib.invalidate_caches()
    return missing


def setup(data_root: str | os.PathLike | None = None, *, dry_run: bool = False, install: bool = True,
          renderer: str | None = None, offline_figures: bool = False, quiet: bool = False,
          environ: MutableMapping[str, str] | None = None) -> NotebookEnv:
    """Prepare this kernel for the notebooks and print what was chosen.

    Parameters
    ----------
    data_root : path, optional
        The notebooks' data folder (a notebook's ``data_root`` parameter); default chosen by
        :func:`choose_data_root`.
    dry_run : bool
        Force ``DRY_RUN=1``, ``ALLOW_LIVE=0`` and ``SCALP_EXEC_ENABLED=false`` in this process.
    install : bool
        Install missing requirements first (:func:`install_missing`).
    renderer : str, optional
        A plotly renderer name (e.g. ``iframe_connected``) instead of the host's default.
    offline_figures : bool
        Embed plotly.js in the notebook (``notebook`` renderer) instead of loading it from its CDN.
    quiet : bool
        Print nothing.
    environ : mapping, optional
        The environment to read and set (default ``os.environ``).

    Returns
    -------
    NotebookEnv

    Raises
    ------
    RuntimeError
        If missing requirements cannot be installed.
    """
    environ = os.environ if environ is None else environ
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    installed = install_missing(REPO_ROOT) if install else ()
    host = detect_host(environ)
    root, why = choose_data_root(data_root, host=host, env=environ)
    folders = {}
    for var, name in RUNTIME_FOLDERS.items():
        if data_root not in (None, "") or not environ.get(var):
            environ[var] = str(root / name)
        folders[var] = Path(environ[var])
        folders[var].mkdir(parents=True, exist_ok=True)
    if dry_run:
        environ.update(DRY_RUN_ENV)
    chosen = choose_renderer(host, renderer=renderer, offline_figures=offline_figures, env=environ)
    import pandas as pd  # after the install: both are requirements
    import plotly.io as pio

    pio.renderers.default = chosen
    pd.set_option("display.max_colwidth", 200)  # rules, reasons and parameters are read whole
    env = NotebookEnv(REPO_ROOT, host, root, folders["SCALP_DATA_DIR"], folders["SCALP_REPORTS_DIR"],
                      folders["SCALP_LOGS_DIR"], folders["SCALP_PUBLIC_DIR"], folders["SCALP_METRICS_DIR"], chosen,
                      installed, dry_run, why)
    if not quiet:
        print(env.describe())
    return env
