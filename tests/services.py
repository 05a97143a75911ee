"""Real services the tests start on loopback (Redis; PostgreSQL later): started per test module,
stopped afterwards. Missing binaries skip the test with a reason outside CI and fail it in CI,
where .ci/run installs them."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need(binary: str, package: str) -> str:
    """Return the path of `binary`, or skip (fail in CI) naming the Debian package that has it."""
    path = shutil.which(binary) or next((p for p in (f"/usr/bin/{binary}", f"/usr/sbin/{binary}") if os.path.exists(p)), None)
    if path is None:
        message = f"{binary} is not installed (Debian package {package}; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


class RedisServer:
    """A real redis-server on a free loopback port, no persistence, in `workdir`."""

    def __init__(self, workdir: Path) -> None:
        binary = need("redis-server", "redis-server")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 10 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _wait_port(port: int, timeout_s: float, what: str, stop) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    stop()
    raise RuntimeError(f"{what} did not start within {timeout_s:.0f} s")


class DaskCluster:
    """A real Dask scheduler and `n_workers` worker processes (no nanny: a killed worker stays dead) on
    loopback; the workers import this repo (``PYTHONPATH``) and run one task at a time."""

    def __init__(self, workdir: Path, n_workers: int = 2) -> None:
        import sys

        repo = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   DASK_DISTRIBUTED__WORKER__DAEMON="False")
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        log = open(Path(workdir) / "dask.log", "ab")
        self.scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                           "--port", str(self.port), "--no-dashboard"], env=env, cwd=repo,
                                          stdout=log, stderr=log)
        self.workers: list[subprocess.Popen] = []
        _wait_port(self.port, 30, "dask scheduler", self.stop)
        for k in range(n_workers):
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--name", f"w{k}", "--host", "127.0.0.1"], env=env, cwd=repo, stdout=log, stderr=log))
        from distributed import Client

        with Client(self.address, timeout="30s") as client:
            client.wait_for_workers(n_workers, timeout=60)

    def worker_pids(self) -> dict[str, int]:
        """Worker name → its process id."""
        return {f"w{k}": p.pid for k, p in enumerate(self.workers)}

    def stop(self) -> None:
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.terminate()
        for p in [*self.workers, self.scheduler]:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


class PostgresServer:
    """A real PostgreSQL server in `workdir` on a free loopback port, one database ``scalp``.

    PostgreSQL refuses to run as root: as root it runs as the ``postgres`` user (Debian's package
    creates it). The binaries are found on PATH or under Debian's ``/usr/lib/postgresql/<v>/bin``.
    """

    def __init__(self, workdir: Path) -> None:
        import glob
        import pwd

        found = shutil.which("initdb") or next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                                                           reverse=True)), None)
        if found is None:
            need("initdb", "postgresql")
        bindir = Path(found).resolve().parent  # /usr/local/bin/initdb may link to Debian's folder
        import tempfile

        self.port = free_port()
        # under /tmp, not `workdir`: pytest's folders are private to the user running the tests
        self.dir = Path(tempfile.mkdtemp(prefix="scalp-pg-"))
        os.chmod(self.dir, 0o755)
        prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root without a 'postgres' user to run PostgreSQL as")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            prefix = ["runuser", "-u", "postgres", "--"]
        self._prefix, self._bin = prefix, bindir
        run = lambda *a: subprocess.run([*prefix, *a], check=True, capture_output=True, timeout=120)  # noqa: E731
        run(str(bindir / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(str(bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "scalp")
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/scalp"

    def stop(self) -> None:
        subprocess.run([*self._prefix, str(self._bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
