"""tools/bench_cycle.py: bad flags answer with one line and exit 2 before any cycle runs; the
--baseline report reads as documented (the measurement itself is the benchmark command's job)."""
from __future__ import annotations

import pytest

from tools import bench_cycle


@pytest.mark.parametrize("argv, message", [
    (["--baseline", "no-such-ref"], "--baseline no-such-ref: not a commit of"),
    (["--baseline", "HEAD", "--workers", "1,2"], "--baseline takes one worker count"),
    (["--cycles", "0"], "--cycles must be ≥ 1"),
])
def test_bad_flags_exit_2_with_one_line(argv, message, capsys):
    assert bench_cycle.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("bench_cycle.py: ")


def test_comparison_report_gives_medians_ratios_rounds_and_the_machine():
    run = {"wall_s": 20.0, "research_s": 17.0, "render_s": 0.5, "other_s": 2.5, "n_rows": 150, "n_promoted": 2,
           "n_errors": 0}
    older = {**run, "render_s": None, "other_s": None}  # a tree whose renderer was not timed
    c = {"baseline": {"ref": "e1f8a23", "commit": "e1f8a23a249102ef"}, "rounds": 1, "workers": None,
         "machine": {"cpu": "AMD EPYC", "cores": 2, "python": "3.11.7", "load_before": [1.0, 1.1, 1.2],
                     "load_after": [2.0, 1.5, 1.3]},
         "old": [older], "new": [{**run, "wall_s": 16.0}],
         "stages": {"wall_s": {"old_median_s": 20.0, "new_median_s": 16.0, "ratio": 0.8, "old_best_s": 19.0,
                               "new_best_s": 15.2, "ratio_best": 0.8},
                    "research_s": {"old_median_s": 17.0, "new_median_s": 17.0, "ratio": 1.0},
                    "render_s": {"old_median_s": None, "new_median_s": 0.5, "ratio": None},
                    "other_s": {"old_median_s": None, "new_median_s": 2.5, "ratio": None}}}
    text = bench_cycle.format_comparison(c)
    assert "baseline e1f8a23 (e1f8a23a2491) vs working tree" in text
    assert any(line.startswith("cycle (wall)") and line.split()[-6:] == ["20.00", "16.00", "0.800", "19.00", "15.20", "0.800"]
               for line in text.splitlines())
    assert any(line.startswith("dashboard render") and line.split()[-6:] == ["—", "0.50", "—", "—", "—", "—"]
               for line in text.splitlines())
    assert "load average (1/5/15 min) before [1.0, 1.1, 1.2], after [2.0, 1.5, 1.3]" in text
    assert "AMD EPYC, 2 cores" in text and "< 1 means the new tree is faster" in text
