"""Install packages of requirements.txt that are missing, with the running interpreter's pip.

Called first by ``bot.py``; also runs by itself when the repo is on ``PYTHONPATH`` (Python imports
``sitecustomize`` at start-up). Prints what it installs. Disabled by ``SCALP_NO_AUTOINSTALL=1``.
When pip cannot install, it prints one clear message (no traceback) and
:func:`ensure_requirements` returns False; ``bot.py`` then exits with status 2.

Nothing else happens here.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().parent / "requirements.txt"
_GUARD = "SCALP_NO_AUTOINSTALL"
_LINE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(==|>=|~=|<=|>|<|!=)?\s*([^\s;#]*)")


def read_requirements(path: Path = REQUIREMENTS) -> list[tuple[str, str]]:
    """Return ``[(distribution name, requirement line), ...]`` of a requirements file.

    Comments, blank lines and options (``-r``, ``--index-url``) are skipped.
    """
    out = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = _LINE.match(line)
        if m:
            out.append((m.group(1), line))
    return out


def missing_requirements(path: Path = REQUIREMENTS) -> list[str]:
    """Return the requirement lines of `path` whose distribution is not installed."""
    from importlib import metadata

    missing = []
    for name, line in read_requirements(path):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(line)
    return missing


def ensure_requirements(path: Path = REQUIREMENTS, *, quiet: bool = False) -> bool:
    """Install the missing requirements of `path`; return True when all are present afterwards.

    Does nothing (returns True) when ``SCALP_NO_AUTOINSTALL=1`` or the file does not exist.
    """
    if os.environ.get(_GUARD) == "1" or not Path(path).exists():
        return True
    missing = missing_requirements(path)
    if not missing:
        return True
    print(f"SCALP: installing missing packages: {' '.join(missing)}", file=sys.stderr, flush=True)
    env = dict(os.environ, **{_GUARD: "1"})  # the pip child must not re-enter this hook
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *missing]
    try:
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    except OSError as e:
        print(f"SCALP: could not run pip ({e}); install them by hand: pip install -r {path}", file=sys.stderr)
        return False
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        errors = [ln.strip() for ln in lines if ln.strip().startswith("ERROR:")]
        reason = (errors or lines[-1:] or ["no output"])[0]
        print(f"SCALP: pip could not install {' '.join(missing)}: {reason}\n"
              f"SCALP: install them by hand (pip install -r {path}) or set {_GUARD}=1 to skip this check.",
              file=sys.stderr)
        return False
    print(f"SCALP: installed {' '.join(missing)}", file=sys.stderr)
    return True


if __name__ == "sitecustomize" and os.environ.get(_GUARD) != "1":  # imported by Python at start-up
    try:
        ensure_requirements(quiet=True)
    except Exception as e:  # never break interpreter start-up
        print(f"SCALP: requirements check skipped: {e}", file=sys.stderr)
