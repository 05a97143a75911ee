"""sitecustomize.py: installs what requirements.txt lists and is missing; guarded; clear failures."""
from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
import sitecustomize as sc  # noqa: E402  (the repo's module, not an interpreter-wide one)

assert Path(sc.__file__).resolve() == REPO_ROOT / "sitecustomize.py"


def test_read_requirements_skips_comments_and_options(tmp_path):
    req = tmp_path / "r.txt"
    req.write_text("# c\n-r other.txt\nnumpy==2.4.6  # pinned\n\npyyaml==6.0.3\nextra[fast]>=1\n")
    assert [name for name, _ in sc.read_requirements(req)] == ["numpy", "pyyaml", "extra"]


def test_shipped_requirements_are_all_pinned_and_installed():
    reqs = sc.read_requirements()
    assert reqs and all("==" in line for _, line in reqs)
    assert sc.missing_requirements() == []


def test_missing_package_is_listed(tmp_path):
    req = tmp_path / "r.txt"
    req.write_text("numpy==2.4.6\nscalp-no-such-package-xyz==1.0\n")
    assert sc.missing_requirements(req) == ["scalp-no-such-package-xyz==1.0"]


def test_disabled_by_environment(tmp_path, monkeypatch, capsys):
    req = tmp_path / "r.txt"
    req.write_text("scalp-no-such-package-xyz==1.0\n")
    monkeypatch.setenv("SCALP_NO_AUTOINSTALL", "1")
    assert sc.ensure_requirements(req) is True
    assert capsys.readouterr().err == ""


def test_pip_failure_is_one_clear_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    req = tmp_path / "r.txt"
    req.write_text("scalp-no-such-package-xyz==1.0\n")
    monkeypatch.delenv("SCALP_NO_AUTOINSTALL", raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # fail fast, no registry needed
    assert sc.ensure_requirements(req) is False
    err = capsys.readouterr().err
    assert "installing missing packages: scalp-no-such-package-xyz==1.0" in err
    assert "pip could not install scalp-no-such-package-xyz==1.0" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_installs_missing_package_at_interpreter_start_when_repo_on_pythonpath(tmp_path):
    """A real pip install of a local package into a fresh virtual environment, triggered by
    Python importing the repo's sitecustomize at start-up."""
    wheel = tmp_path / "scalp_demo_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:  # a minimal wheel: no build step, no registry
        z.writestr("scalp_demo_pkg/__init__.py", "VALUE = 42\n")
        z.writestr("scalp_demo_pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: scalp-demo-pkg\nVersion: 1.0\n")
        z.writestr("scalp_demo_pkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr("scalp_demo_pkg-1.0.dist-info/RECORD", "")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    py = env_dir / "bin" / "python"
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "sitecustomize.py").write_text((REPO_ROOT / "sitecustomize.py").read_text())
    (repo / "requirements.txt").write_text(f"scalp-demo-pkg @ file://{wheel}\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo), "PIP_NO_INDEX": "1",
           "HOME": str(tmp_path)}
    out = subprocess.run([str(py), "-c", "import scalp_demo_pkg; print(scalp_demo_pkg.VALUE)"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
    assert "installing missing packages: scalp-demo-pkg" in out.stderr
    again = subprocess.run([str(py), "-c", "print('ok')"], env=env, capture_output=True, text=True, timeout=60)
    assert again.stdout.strip() == "ok" and "installing" not in again.stderr
