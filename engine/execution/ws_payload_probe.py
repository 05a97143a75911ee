"""Preview Kraken WebSocket v2 order messages, or check a file of them, without sending anything.

Usage::

    python -m engine.execution.ws_payload_probe --symbol BTC/USD --side buy --qty 0.001 --limit 28440 \\
        --sl 28410 --sl_limit 28400 --tif gtc --post_only 1 --validate 1
    python -m engine.execution.ws_payload_probe --symbol BTC/USD --side sell --qty 0.001 \\
        --tp 28600 --tp_limit 28590 --standalone_tp 1
    python -m engine.execution.ws_payload_probe --check messages.json [--now-ms 1700000000000]

The first prints one ``add_order``: the primary limit (or market, without ``--limit``) with an OTO
``stop-loss-limit`` secondary (``stop-loss`` without ``--sl_limit``; a ``take-profit(-limit)``
secondary with ``--tp`` instead). Kraken takes one secondary only: a take-profit *and* a stop-loss
are printed as two messages, the second to be placed after the fill. ``--standalone_tp 1`` prints a
take-profit(-limit) order on its own. The token is a placeholder; ``validate`` is true unless
``--validate 0``.

``--check FILE`` reads a JSON array of request messages and prints one JSON line per message,
``{"index": i, "accepted": true|false, "rules": [broken rule names]}``, judging ``deadline`` and
``expire_time`` at ``--now-ms`` (default now); exit 0 when the file was read, 2 when it cannot be.
Rules and their sources: :mod:`engine.execution.kraken_rules`.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from engine.cli import ArgumentParser, parse, run_cli, setup_logging
from engine.errors import ConfigError

PROG = "ws_payload_probe"


def _flag(text: str) -> bool:
    if text.strip().lower() in ("1", "true", "yes"):
        return True
    if text.strip().lower() in ("0", "false", "no"):
        return False
    raise ConfigError(f"{text!r}: expected 1 or 0")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m engine.execution.ws_payload_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--symbol", default="BTC/USD", help="v2 symbol (default BTC/USD)")
    p.add_argument("--side", choices=("buy", "sell"), default="buy", help="side of the primary order")
    p.add_argument("--qty", type=float, default=None, help="base-asset quantity")
    p.add_argument("--limit", type=float, default=None, help="limit price of the primary (quote); none = market")
    p.add_argument("--sl", type=float, default=None, help="stop-loss trigger price (quote)")
    p.add_argument("--sl_limit", type=float, default=None, help="stop-loss limit price (quote): stop-loss-limit")
    p.add_argument("--tp", type=float, default=None, help="take-profit trigger price (quote)")
    p.add_argument("--tp_limit", type=float, default=None, help="take-profit limit price (quote): take-profit-limit")
    p.add_argument("--standalone_tp", type=_flag, default=False, help="1: print the take-profit as its own order")
    p.add_argument("--tif", default="gtc", help="time in force of the primary: gtc ioc gtd fok (default gtc)")
    p.add_argument("--post_only", type=_flag, default=False, help="1: post-only primary (limit only)")
    p.add_argument("--validate", type=_flag, default=True, help="1 (default): validate only, never matched")
    p.add_argument("--cl_ord_id", default=None, help="client order id (UUID or ≤ 18 ASCII characters)")
    p.add_argument("--deadline_ms", type=int, default=5000, help="deadline after now in ms (500 … 60000; default 5000)")
    p.add_argument("--check", type=Path, default=None, help="JSON array of request messages to check")
    p.add_argument("--now-ms", type=int, default=None, help="now for --check and the deadline (epoch ms; default now)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    p.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return p


def check_file(path: Path, now_ms: int) -> list[dict]:
    """Return ``{"index", "accepted", "rules"}`` for every message of a JSON array file.

    Raises
    ------
    ConfigError
        If the file cannot be read or is not a JSON array.
    """
    from engine.execution.kraken_rules import broken_rules

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--check {path}: no such file") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"--check {path}: not readable JSON ({e})") from None
    if not isinstance(doc, list):
        raise ConfigError(f"--check {path}: expected a JSON array of request messages, found {type(doc).__name__}")
    out = []
    for i, message in enumerate(doc):
        rules = broken_rules(message, now_ms)
        out.append({"index": i, "accepted": not rules, "rules": rules})
    return out


def preview(args) -> list[dict]:
    """Return the messages the flags describe (see the module docstring)."""
    from engine.execution.kraken_payloads import Secondary, Trigger, add_order

    if args.qty is None:
        raise ConfigError("--qty: required (base-asset quantity, e.g. 0.001)")
    now_ms = int(time.time() * 1000) if args.now_ms is None else args.now_ms
    common = dict(symbol=args.symbol, order_qty=args.qty, validate=args.validate, deadline_ms=args.deadline_ms,
                  now_ms=now_ms)
    exit_side = "sell" if args.side == "buy" else "buy"
    if args.standalone_tp:
        if args.tp is None:
            raise ConfigError("--standalone_tp 1 needs --tp (and --tp_limit for a take-profit-limit)")
        otype = "take-profit-limit" if args.tp_limit is not None else "take-profit"
        return [add_order(side=args.side, order_type=otype, trigger=Trigger(args.tp), limit_price=args.tp_limit,
                          cl_ord_id=args.cl_ord_id, **common)]
    legs = []
    if args.sl is not None:
        legs.append(Secondary("stop-loss-limit" if args.sl_limit is not None else "stop-loss",
                              limit_price=args.sl_limit, trigger_price=args.sl))
    if args.tp is not None:
        legs.append(Secondary("take-profit-limit" if args.tp_limit is not None else "take-profit",
                              limit_price=args.tp_limit, trigger_price=args.tp))
    primary = add_order(side=args.side, order_type="limit" if args.limit is not None else "market",
                        limit_price=args.limit, secondary=legs[0] if legs else None, time_in_force=args.tif,
                        post_only=args.post_only, cl_ord_id=args.cl_ord_id, **common)
    out = [primary]
    for leg in legs[1:]:  # one secondary per primary: the other leg is its own order, after the fill
        out.append(add_order(side=exit_side, order_type=leg.order_type, limit_price=leg.limit_price,
                             trigger=Trigger(leg.trigger_price), **common))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        if args.check is not None:
            now_ms = int(time.time() * 1000) if args.now_ms is None else args.now_ms
            for line in check_file(args.check, now_ms):
                print(json.dumps(line))
            return 0
        messages = preview(args)
        print(json.dumps(messages[0] if len(messages) == 1 else messages, indent=1))
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
