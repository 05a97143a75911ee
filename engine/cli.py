"""What every CLI shares: logging set-up, the shared flags and the exit-code policy.

Exit codes (STYLE.md §10): 0 success, 2 bad input (an :class:`~engine.errors.EngineError`,
printed as one line on stderr, no traceback), 1 an unexpected failure (with traceback).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable, Sequence

from engine.errors import EngineError

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one line and exit status 2 (argparse's own status)."""

    def error(self, message: str) -> None:  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--config PATH``, ``-v`` (repeatable) and ``-q``."""
    parser.add_argument("--config", type=Path, default=None,
                        help="config.yaml to use (default engine/config/config.yaml, or $SCALP_CONFIG)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (repeatable)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")


def setup_logging(verbose: int = 0, quiet: bool = False, log_file: Path | None = None) -> None:
    """Configure the root logger: stderr, plus `log_file` when given (its folder is created)."""
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    for noisy in ("ccxt", "urllib3", "optuna", "numba", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def run_cli(prog: str, body: Callable[[], int]) -> int:
    """Run `body` and turn an EngineError into one stderr line and exit status 2."""
    try:
        return body()
    except EngineError as e:
        print(f"{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse `argv`; a bad flag exits 2 with one line (SystemExit is raised by argparse)."""
    return parser.parse_args(None if argv is None else list(argv))
