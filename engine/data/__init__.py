"""Candles: the frame contract, the CSV store, resampling, known gaps, the bundled sample,
backfill from an exchange and the watchlist (the first stages of a cycle).

``data`` never imports ``research``, ``execution`` or ``desk``.
"""
from engine.data.candles import (CANDLE_COLUMNS, CSV_HEADER, candles_from_arrays, check_bars, empty_candles,
                                 index_ms, validate_candles)
from engine.data.resample import GAP_POLICIES, apply_gap_policy, find_gaps, resample_candles
from engine.data.sample import SAMPLE_DIR, SAMPLE_SOURCE, load_sample, sample_clock, sample_pairs, sample_volumes
from engine.data.store import (append_candles, candle_lock, candle_path, last_candle_ms, quarantine_corrupt,
                               read_candles, read_or_quarantine, read_source, read_tail_candles, source_sidecar_path,
                               timeframe_of_path, write_candles)

__all__ = [
    "CANDLE_COLUMNS", "CSV_HEADER", "GAP_POLICIES", "SAMPLE_DIR", "SAMPLE_SOURCE", "append_candles",
    "apply_gap_policy", "candle_lock", "candle_path", "candles_from_arrays", "check_bars", "empty_candles",
    "find_gaps", "index_ms", "last_candle_ms", "load_sample", "quarantine_corrupt", "read_candles",
    "read_or_quarantine", "read_source", "read_tail_candles", "resample_candles", "sample_clock", "sample_pairs",
    "sample_volumes", "source_sidecar_path", "timeframe_of_path", "validate_candles", "write_candles",
]
