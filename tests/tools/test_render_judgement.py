"""tools/render: the dashboard shows whether a result beats chance, with the producers' own values.

Inputs come from one real offline cycle (tests/tools/sample_inputs.py); the judgement of each row is
the research stage's, or the fixture's seeded stand-in written back through the producers.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re

from engine.research import reports
from engine.research.reports.rows import Judgement
from engine.strategy.promoted import load_strategies, save_strategies
from tests.tools.sample_inputs import promote_again
from tools.render import format as fmt
from tools.render import render
from tools.render.charts import HIST_WIDTH, twins_histogram
from tools.render.evidence import closest_candidates
from tools.render.readers import PromotionReport, read_promotion

#: Classes and colours the page uses for problems (the "nothing promoted" block must use none).
RED_CLASSES = ("warn", "chip-bad", "errors", "config-problem", "overdue", "st-MIS")
RED_COLOURS = ("--mis", "#cf222e", "#b42318", "#ffe2e0", "#fef3f2", "#f85149")


def _render(rt) -> str:
    return render(rt, strategies_path=rt.strategies_path, repo_root=rt.root).read_text(encoding="utf-8")


def _rows(rt) -> dict:
    return {(r.pair, r.timeframe, r.entry_set): r
            for r in reports.read_summary(rt.reports_dir / reports.SUMMARY_FILE).rows}


def _article(html: str, element_id: str) -> str:
    start = html.index(f'id="{element_id}"')
    return html[start:html.index("</article>", start)]


def _fact(label: str, value: str) -> str:
    return f"<dt>{label}</dt><dd>{value}</dd>"


def _judgement_is_shown(card: str, row) -> None:
    """Assert that `card` shows `row`'s stored judgement, each value as format.py writes it."""
    j = row.judgement
    assert _fact("Deflated Sharpe", f"DSR {fmt.fmt_num(row.deflated_sharpe, 2)} · {j.n_trials_slot} trials") in card
    assert _fact("p vs random", f"{fmt.fmt_num(j.p_value_vs_random, 3)} · {j.n_twins} twins") in card
    assert _fact("PBO", fmt.fmt_num(j.pbo, 2)) in card
    assert _fact("Expectancy gross / net [%/trade]",
                 f"{fmt.fmt_num(j.expectancy_gross_pct, 3)} / {fmt.fmt_num(j.expectancy_net_pct, 3)}") in card
    # break-even cost right beside the cost per trade
    assert (_fact("Cost per trade [bps]", fmt.fmt_num(j.cost_per_trade_bps, 1)) + "</div><div>"
            + _fact("Break-even cost [bps]", fmt.fmt_num(j.break_even_cost_bps, 1))) in card
    # the twins' histogram: one bar per stored bin, its count in the bar's title, the row's return marked
    twins = card[card.index('<figure class="twins">'):]  # (the card's equity sparkline is an SVG too)
    svg = twins[twins.index("<svg"):twins.index("</svg>")]
    edges, counts = j.twins_hist["edges"], j.twins_hist["counts"]
    assert [int(n) for n in re.findall(r"<title>[^<]*: (\d+)</title>", svg)] == counts
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg)]
    assert heights.index(max(heights)) == counts.index(max(counts))
    ret = row.out_of_sample["total_return_pct"]
    # where the return falls on the twins' axis, 240 SVG units wide (edges of the axis when off it)
    x = (ret - edges[0]) / (edges[-1] - edges[0]) * HIST_WIDTH
    mark = float(re.search(r'<line class="mk" x1="([\d.]+)"', svg).group(1))
    assert mark == (1.0 if x < 1 else HIST_WIDTH - 1.0 if x > HIST_WIDTH - 1 else round(x, 1))
    assert f"<text x=\"0\" y=\"55\">{fmt.fmt_num(edges[0], 2)}</text>" in svg
    caption = (f"Return [%] of {j.n_twins} random-entry twins (same exits, costs and number of entries; "
               f"seed {j.twins_seed}): median {fmt.fmt_num(j.twins_median_pct, 2)}; this row {fmt.fmt_num(ret, 2)}")
    assert caption in card and f"excess {j.excess_vs_random_pct:+.2f} pp</figcaption>" in card
    # which fold chose which parameters, and what they returned on the fold's test window
    for i, f in enumerate(row.folds):
        cls = ' class="dep"' if i == len(row.folds) - 1 else ""
        assert (f"<tr{cls}><td>{f.fold + 1}</td><td>{fmt.fmt_window(f.test.first_ms, f.test.last_ms)}</td>"
                f"<td>{fmt.fmt_params(f.params)}</td>"
                f"<td class=\"r\">{fmt.fmt_num(f.out_of_sample['total_return_pct'], 2)}</td></tr>") in card
    assert card.count('<tr class="dep">') == 1
    # the deployed parameters and their own out-of-sample metrics
    d = j.deployed_oos
    assert (f"Deployed (the last fold's choice): <b>{fmt.fmt_params(j.deployed_params)}</b>; its own "
            f"out-of-sample: return {fmt.fmt_num(d['total_return_pct'], 2)} % · Sharpe {fmt.fmt_num(d['sharpe'], 2)} "
            f"· trades {d['n_trades']} · max DD {fmt.fmt_num(d['max_drawdown_pct'], 2)} %") in card
    if j.holdout:
        assert (f"Holdout (untouched final window): return {fmt.fmt_num(j.holdout['total_return_pct'], 2)} %"
                in card)
    else:
        assert "Holdout" not in card


# ---------------------------------------------------------------- promoted strategies
def test_each_promoted_card_shows_the_judgement_of_its_row(rendered_session):
    rt = rendered_session
    html = rt.html_path.read_text(encoding="utf-8")
    rows = _rows(rt)
    for pair, tf, entry_set in rt.promoted:
        row = rows[(pair, tf, entry_set)]
        assert row.judgement.n_twins > 0 and len(row.folds) >= 2
        _judgement_is_shown(_article(html, f"s-{pair}_{tf}_{entry_set}"), row)
    assert html.count('<figure class="twins">') == len(rt.promoted)
    assert "No strategy beat chance" not in html and 'id="no-promotion"' not in html


def test_undefined_judgement_values_show_a_dash(dashboard_inputs):
    """A row the research stage could not judge (no trade: NaN everywhere, no twins) shows "—", no histogram."""
    rt = dashboard_inputs
    pair, tf, entry_set = rt.promoted[0]
    path = rt.reports_dir / reports.SUMMARY_FILE
    summary = reports.read_summary(path)
    rows = tuple(dataclasses.replace(r, judgement=Judgement(), deflated_sharpe=math.nan)
                 if (r.pair, r.timeframe, r.entry_set) == (pair, tf, entry_set) else r for r in summary.rows)
    reports.write_summary(path, dataclasses.replace(summary, rows=rows))
    row = _rows(rt)[(pair, tf, entry_set)]
    card = _article(_render(rt), f"s-{pair}_{tf}_{entry_set}")
    assert _fact("Deflated Sharpe", f"DSR — · {row.n_configs_tried} tried") in card  # what older reports counted
    for label in ("p vs random", "PBO", "Cost per trade [bps]", "Break-even cost [bps]"):
        assert _fact(label, "—") in card
    assert _fact("Expectancy gross / net [%/trade]", "— / —") in card
    assert '<figure class="twins">' not in card
    assert "Deployed (the last fold's choice): <b>—</b>; its own out-of-sample: —" in card
    assert 'class="dep"' not in card  # nothing says which parameters trade next


def test_a_malformed_twins_histogram_is_named_not_drawn(dashboard_inputs):
    rt = dashboard_inputs
    pair, tf, entry_set = rt.promoted[1]
    path = rt.reports_dir / reports.SUMMARY_FILE
    summary = reports.read_summary(path)
    rows = tuple(dataclasses.replace(r, judgement=dataclasses.replace(
        r.judgement, twins_hist={"edges": [0.0, 1.0], "counts": [3, 4]}))
        if (r.pair, r.timeframe, r.entry_set) == (pair, tf, entry_set) else r for r in summary.rows)
    reports.write_summary(path, dataclasses.replace(summary, rows=rows))
    card = _article(_render(rt), f"s-{pair}_{tf}_{entry_set}")
    assert '<figure class="twins">' not in card and "twins histogram not of the documented shape." in card


def test_a_card_says_when_its_judgement_is_from_a_later_run(dashboard_inputs):
    rt = dashboard_inputs
    strategies = load_strategies(rt.strategies_path)
    first = strategies[0]
    earlier = dataclasses.replace(first.period, last_ms=first.period.last_ms - 86_400_000)
    save_strategies(rt.strategies_path, [dataclasses.replace(first, period=earlier)] + strategies[1:], rt.now_ms)
    html = _render(rt)
    card = _article(html, f"s-{first.pair}_{first.timeframe}_{first.entry_set}")
    assert (f"Judgement of the latest research run (candles to {fmt.fmt_ms(first.period.last_ms)}), not of the "
            f"run that promoted it (candles to {fmt.fmt_ms(earlier.last_ms)}).") in card
    assert html.count("Judgement of the latest research run") == 1


# ---------------------------------------------------------------- nothing promoted
def _expected_closest(rt) -> list:
    """The three rejected decisions of promotion.json with fewest failed rules, then lowest p-value."""
    rows = _rows(rt)
    decisions = json.loads((rt.reports_dir / "promotion.json").read_text())["decisions"]

    def key(d):
        p = rows[(d["pair"], d["timeframe"], d["entry_set"])].judgement.p_value_vs_random
        return (len(d["reasons"]), math.isnan(p), 0.0 if math.isnan(p) else p)

    return sorted((d for d in decisions if not d["promoted"]), key=key)[:3]


def test_no_strategy_beat_chance_shows_the_three_closest_candidates_with_their_failed_rules(dashboard_inputs):
    rt = dashboard_inputs
    decisions = promote_again(rt.root, "conservative", rt.now_ms)  # the bundled sample passes none of these
    assert decisions and not any(d.promoted for d in decisions) and load_strategies(rt.strategies_path) == []
    html = _render(rt)
    section = html[html.index('<section id="strategies"'):html.index('<section id="summary"')]
    assert "<strong>No strategy beat chance this cycle.</strong>" in section
    assert (f"{len(decisions)} candidates judged {fmt.fmt_ms(rt.now_ms)} by the conservative rules; the 3 closest "
            f"(fewest failed rules, then lowest p vs random):") in section
    assert "None promoted yet." not in section and '<article class="card strat' not in section
    expected = _expected_closest(rt)
    ids = re.findall(r'<article class="card cand" id="c-([^"]+)">', section)
    assert ids == [f"{d['pair']}_{d['timeframe']}_{d['entry_set']}" for d in expected]
    rows = _rows(rt)
    for rank, d in enumerate(expected, 1):
        card = _article(section, f"c-{d['pair']}_{d['timeframe']}_{d['entry_set']}")
        assert f'<span class="chip">closest #{rank}</span>' in card
        assert (f"<h4>Failed rules ({len(d['reasons'])})</h4>\n      <ul class=\"rules\">"
                + "".join(f"<li>{r}</li>" for r in d["reasons"]) + "</ul>") in card.replace("&lt;", "<").replace("&gt;", ">")
        row = rows[(d["pair"], d["timeframe"], d["entry_set"])]
        assert f"<b>{row.entry_set}</b>" in card and fmt.fmt_params(row.params) in card
        _judgement_is_shown(card, row)
    # a result, not an error: none of the page's problem styling
    classes = set(" ".join(re.findall(r'class="([^"]+)"', section)).split())
    style = html[html.index("<style>"):html.index("</style>")]
    assert not classes & set(RED_CLASSES) and 'role="alert"' not in section
    for cls in classes:
        for rule in re.findall(r"[^{}]*\." + re.escape(cls) + r"(?![\w-])[^{]*\{([^}]*)\}", style):
            assert not any(colour in rule for colour in RED_COLOURS), (cls, rule)
    assert not list((rt.public_dir / "charts").glob("*.json"))  # nothing promoted, nothing to chart
    assert len(html.encode("utf-8")) < 300_000


def test_closest_is_fewest_failed_rules_then_lowest_p_value(sample_inputs):
    """Ranking by hand: A and C fail one rule (C is less likely luck), B two, D one with an
    undefined p-value (after A and C), E was promoted."""
    from engine.promotion import PromotionDecision

    rows = list(_rows(sample_inputs).values())[:5]

    def with_p(row, p):
        return dataclasses.replace(row, judgement=dataclasses.replace(row.judgement, p_value_vs_random=p))

    ps = {"A": 0.30, "B": 0.001, "C": 0.02, "D": math.nan, "E": 0.0}
    reasons = {"A": ("Sharpe 0.10 < 0.5",), "B": ("trades 3 < 15", "win rate 30.0 % < 40 %"),
               "C": ("PBO 0.50 > 0.35",), "D": ("profit factor undefined",), "E": ("passes every rule",)}
    by_key, decisions = {}, []
    for name, row in zip("ABCDE", rows):
        by_key[(row.pair, row.timeframe, row.entry_set)] = with_p(row, ps[name])
        decisions.append(PromotionDecision(row.pair, row.timeframe, row.entry_set, name == "E", reasons[name]))
    report = PromotionReport(0, "balanced", tuple(decisions))
    got = [d.reasons for d, _ in closest_candidates(report, by_key)]
    assert got == [reasons["C"], reasons["A"], reasons["D"]]
    assert [d.reasons for d, _ in closest_candidates(report, by_key, n=10)][-1] == reasons["B"]


def test_active_strategies_from_earlier_cycles_are_shown_instead(dashboard_inputs):
    """Nothing promoted this cycle, but strategies promoted earlier are still active: their cards."""
    rt = dashboard_inputs
    kept = load_strategies(rt.strategies_path)
    promote_again(rt.root, "conservative", rt.now_ms)
    save_strategies(rt.strategies_path, kept, rt.now_ms)
    html = _render(rt)
    assert "No strategy beat chance" not in html and html.count('<article class="card strat') == len(kept)


def test_a_bad_promotion_json_is_a_listed_problem(dashboard_inputs):
    rt = dashboard_inputs
    path = rt.reports_dir / "promotion.json"
    doc = json.loads(path.read_text())
    doc["decisions"][2]["reasons"] = "Sharpe too low"
    path.write_text(json.dumps(doc))
    html = _render(rt)
    listed = html.split("Report problems")[1].split("</section>")[0].replace("&#39;", "'")
    assert "promotion.json → decisions[2].reasons = 'Sharpe too low': expected a list" in listed
    doc["decisions"][2]["reasons"] = ["Sharpe 0.1 < 0.5"]
    path.write_text(json.dumps(doc))
    assert read_promotion(path).decisions[2].reasons == ("Sharpe 0.1 < 0.5",)


# ---------------------------------------------------------------- formatting and drawing
def test_judgement_formatters():
    assert fmt.fmt_dsr(0.6234, 450) == "DSR 0.62 · 450 trials" and fmt.fmt_dsr(0.5, 1) == "DSR 0.50 · 1 trial"
    assert fmt.fmt_dsr(math.nan, 0, 27) == "DSR — · 27 tried" and fmt.fmt_dsr(None, None) == "DSR — · — tried"
    assert fmt.fmt_signed(1.754) == "+1.75" and fmt.fmt_signed(-0.4) == "-0.40" and fmt.fmt_signed(math.nan) == "—"
    # 2021-04-15 10:22 and 2021-04-21 06:59 UTC: the year once; across a new year, twice
    assert fmt.fmt_window(1618482120000, 1618988340000) == "2021-04-15 10:22 → 04-21 06:59 UTC"
    assert fmt.fmt_window(1609459140000, 1609459200000) == "2020-12-31 23:59 → 2021-01-01 00:00 UTC"
    assert fmt.fmt_window(None, 1) == "—"
    assert fmt.fmt_metrics_line({"total_return_pct": -1.234, "sharpe": math.nan, "n_trades": 12}) == \
        "return -1.23 % · Sharpe — · trades 12"
    assert fmt.fmt_metrics_line({}) == "—"


def test_twins_histogram_scales_bars_and_clamps_the_mark():
    # edges 0..10 in steps of 1 %, counts peak at bin 5: its bar is the tallest (42 units = 56 - 12 - 2)
    g = twins_histogram({"edges": list(range(11)), "counts": [0, 1, 2, 4, 8, 16, 8, 4, 2, 1]}, 2.5)
    assert [b["h"] for b in g["bars"]][5] == 42.0 and g["bars"][0]["h"] == 0.0 and g["bars"][1]["h"] == 2.6
    assert g["mark_x"] == 60.0 and g["mark_off"] is None  # 2.5 % is a quarter of the 240-unit axis
    assert (g["lo"], g["hi"]) == ("0.00", "10.00")
    assert twins_histogram({"edges": list(range(11)), "counts": [1] * 10}, -3)["mark_off"] == "left"
    right = twins_histogram({"edges": list(range(11)), "counts": [1] * 10}, 30)
    assert right["mark_off"] == "right" and right["mark_x"] == HIST_WIDTH - 1
    assert twins_histogram({"edges": list(range(11)), "counts": [1] * 10}, math.nan)["mark_x"] is None
    for bad in ({}, {"edges": [0, 1], "counts": [1, 2]}, {"edges": [0, 0, 1], "counts": [1, 2]},
                {"edges": [0, 1, None], "counts": [1, 2]}, {"edges": [0, 1, 2], "counts": [1, -2]}, [1, 2]):
        assert twins_histogram(bad, 1.0) is None, bad
