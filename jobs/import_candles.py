"""Import your own OHLCV files into the candle store: CSV (header or not; timestamps in s, ms, µs or
ISO 8601), gzip, Binance public-data kline zips, freqtrade feather/json.

Usage::

    python jobs/import_candles.py ~/Downloads/BTCUSDT-1m-2021-04.zip ~/Downloads/BTCUSDT-1m-2021-05.zip
    python jobs/import_candles.py my_eth.csv --pair ETH/USDT --tf 5m
    python jobs/import_candles.py user_data/data/binance/*.feather --replace --json

Each file is validated row by row with the store's rules, stored as
``<data_dir>/ohlcv/<PAIR>/<TF>.csv`` with the source ``import:<file name>``, and resampled to the
configured higher timeframes (``runtime.tf_list``). Run the workbench on these files with
``data_source: local`` (``SCALP_DATA_SOURCE=local python bot.py``). Exit 0 when everything was
stored, 2 on a bad file or flag (one line naming the file, line and value; nothing is written for
that pair and timeframe).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# The engine (pandas) loads after the flags are parsed, so --help answers at once.
from engine.cli import ArgumentParser, add_common_flags, parse, run_cli, setup_logging  # noqa: E402

PROG = "import_candles.py"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    add_common_flags(p)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="candle files to import")
    p.add_argument("--pair", default=None, help="pair of files whose name does not say it (BTC/USDT or BTCUSDT)")
    p.add_argument("--tf", default=None,
                   help="timeframe of files whose name does not say it (default: read from the candles' spacing)")
    p.add_argument("--replace", action="store_true",
                   help="move stored files of another source aside (timestamped) and replace them")
    p.add_argument("--data-dir", type=Path, default=None, help="store root (default runtime.data_dir)")
    p.add_argument("--json", action="store_true", help="print what was stored as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        from engine.config import load_config
        from engine.data.importer import format_table, import_candles

        rt = load_config(args.config).runtime
        results = import_candles(args.paths, args.data_dir or rt.data_dir, pair=args.pair, timeframe=args.tf,
                                 timeframes=rt.tf_list, replace=args.replace)
        if args.json:
            print(json.dumps([r.to_json() for r in results], indent=1))
        else:
            print(format_table(results))
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
