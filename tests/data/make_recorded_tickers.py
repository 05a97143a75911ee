"""Rebuild tests/data/binance_tickers_24h.json from the bundled real data (see README.md here).

Run from the repository root: ``python -m tests.data.make_recorded_tickers``. Deterministic.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from engine import data as datastore

HERE = Path(__file__).resolve().parent
ORDERBOOK = datastore.SAMPLE_DIR.parent / "orderbook"
END_MS = 1_620_000_000_000  # 2021-05-03 00:00 UTC: end of the bundled 1m window

#: symbol -> top-of-book recording used for its bid/ask (Binance spot where one exists).
QUOTES = {
    "BTCUSDT": "binance_spot_2021-01-08_nautilus.csv.gz",
    "ETHUSDT": "bybit_spot_2026-08-09.csv.gz",
    "SOLUSDT": "bybit_linear-perp_2026-08-09.csv.gz",
    "DOGEUSDT": "bybit_linear-perp_2026-08-09.csv.gz",
    "NKNUSDT": "binance_spot_2021-10-12.csv.gz",
    "COMPUSDT": "binanceus_spot_2021-10-12.csv.gz",
    "CRVUSDT": "binanceus_spot_2021-10-12.csv.gz",
    "ZRXUSDT": "binanceus_spot_2021-10-12.csv.gz",
    "BCHSVUSDT": "kucoin_spot_2021-04-25.csv.gz",
}


def median_quote(file: str, symbol: str) -> dict:
    """The recorded row (strings as stored) whose spread % is the lower median of the symbol's rows."""
    with gzip.open(ORDERBOOK / file, "rt") as handle:
        header = handle.readline().strip().split(",")
        rows = [dict(zip(header, line.strip().split(","))) for line in handle if f",{symbol}," in line]
    spreads = [(float(r["ask"]) - float(r["bid"])) / ((float(r["ask"]) + float(r["bid"])) / 2) for r in rows]
    order = np.argsort(spreads, kind="stable")
    return rows[int(order[(len(order) - 1) // 2])] | {"file": file}


def main() -> None:
    tickers = []
    for folder in datastore.sample_pairs() + sorted(set(QUOTES) - set(datastore.sample_pairs())):
        entry = {"symbol": folder}
        if folder in datastore.sample_pairs():
            c = datastore.load_sample(folder, "1m")
            ts = datastore.index_ms(c)
            day = c[(ts >= END_MS - 86_400_000) & (ts < END_MS)]
            qv = float((day["close"] * day["volume"]).sum())
            vol = float(day["volume"].sum())
            last = float(day["close"].iloc[-1])
            entry |= {
                "openPrice": repr(float(day["open"].iloc[0])), "highPrice": repr(float(day["high"].max())),
                "lowPrice": repr(float(day["low"].min())), "lastPrice": repr(last),
                "volume": repr(round(vol, 8)), "quoteVolume": repr(round(qv, 8)),
                "weightedAvgPrice": repr(round(qv / vol, 8)),
            }
        else:
            entry |= {"volume": "0", "quoteVolume": "0"}
        if folder in QUOTES:
            q = median_quote(QUOTES[folder], folder)
            entry |= {"bidPrice": q["bid"], "bidQty": q["bid_size"], "askPrice": q["ask"], "askQty": q["ask_size"],
                      "_quote_source": f"{q['file']} @ {q['timestamp_ms']}"}
            if "lastPrice" not in entry:
                mid = repr((float(q["bid"]) + float(q["ask"])) / 2)
                entry |= {"openPrice": mid, "highPrice": mid, "lowPrice": mid, "lastPrice": mid, "weightedAvgPrice": mid}
        else:
            entry |= {"bidPrice": "0.00000000", "bidQty": "0.00000000", "askPrice": "0.00000000", "askQty": "0.00000000"}
        entry |= {"priceChange": "0", "priceChangePercent": "0", "prevClosePrice": entry["openPrice"],
                  "lastQty": "0", "openTime": END_MS - 86_400_000, "closeTime": END_MS - 1,
                  "firstId": -1, "lastId": -1, "count": 0}
        tickers.append(entry)
    (HERE / "binance_tickers_24h.json").write_text(json.dumps(tickers, indent=1) + "\n")


if __name__ == "__main__":
    main()
