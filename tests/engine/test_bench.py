"""engine.bench --baseline: the pieces that need no timing (bad ref, tree export, report text)."""
from __future__ import annotations

import pytest

from engine import bench


def test_unknown_baseline_ref_exits_2_with_one_line(capsys):
    assert bench.main(["--baseline", "no-such-ref-0123", "--bars", "1000", "--repeat", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--baseline no-such-ref-0123: not a commit" in err[0]


def test_export_tree_extracts_the_commit(tmp_path):
    commit = bench.export_tree("HEAD", tmp_path)
    assert len(commit) == 40 and (tmp_path / "engine" / "bench.py").is_file()
    with pytest.raises(ValueError, match="not a commit"):
        bench.export_tree("no-such-ref-0123", tmp_path / "x")


def test_comparison_report_puts_ratios_first():
    figure = {"old_s": [2.0, 1.0], "new_s": [1.0, 1.0], "old_median_s": 1.5, "new_median_s": 1.0,
              "old_best_s": 1.0, "new_best_s": 1.0, "old_per_s": 666_667, "new_per_s": 1_000_000,
              "ratio_median": 1.5, "ratio_best": 1.0}
    c = {"baseline": {"ref": "abc", "commit": "a" * 40}, "n_bars": 1_000_000, "rounds": 2,
         "machine": {"cpu": "Test CPU", "cores": 2, "python": "3.11", "load_before": [0.1, 0.2, 0.3],
                     "load_after": [0.4, 0.5, 0.6]},
         "single": figure, "grid": figure}
    text = bench.format_comparison(c)
    assert text.index("new/old median") < text.index("old median ")
    assert "1.500" in text and "Test CPU, 2 cores" in text and "before [0.1, 0.2, 0.3]" in text
