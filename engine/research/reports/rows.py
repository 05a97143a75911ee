"""Summary rows (summary.json) and candidates (strategies.yml.next) of a research run."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from engine.clock import iso_ms
from engine.errors import ConfigError
from engine.fileio import json_safe
from engine.markets import folder_to_pair
from engine.records import Fields, Period
from engine.research.reports.curves import curve_name
from engine.research.reports.status import ClockReading, StageError
from engine.strategy.exits import Costs, ExitPlan
from engine.strategy.promoted import read_costs, read_exit_plan
from engine.types import DataSource

#: Folder of the curve files inside ``reports_dir`` (a candidate's ``curve`` starts with it).
CURVES_DIR = "curves"


def _symbol(pair: str) -> str:
    try:
        return folder_to_pair(pair)
    except ConfigError:  # an unrecognised quote: the folder name is all there is
        return pair


@dataclass(frozen=True)
class FoldWindow:
    """A train or test window of a walk-forward fold: first/last candle (ms) and bar count."""

    first_ms: int
    last_ms: int
    bars: int

    def to_json(self) -> dict[str, int]:
        return {"first_ms": self.first_ms, "last_ms": self.last_ms, "bars": self.bars}

    @classmethod
    def from_json(cls, f: Fields) -> FoldWindow:
        return cls(f.int("first_ms", minimum=None), f.int("last_ms", minimum=None), f.int("bars"))


@dataclass(frozen=True)
class FoldResult:
    """One walk-forward fold of a search (:func:`engine.research.search.search_entry_set`).

    Attributes: ``fold`` (index), ``params`` chosen in-sample, ``train``/``test`` windows,
    ``in_sample``/``out_of_sample`` metrics, ``n_configs_tried``, ``search`` ("grid" | "optuna"),
    ``ambiguity`` counters of the test window, ``study`` (optuna study name, or None).
    """

    fold: int
    params: dict[str, Any]
    train: FoldWindow
    test: FoldWindow
    in_sample: dict[str, float]
    out_of_sample: dict[str, float]
    n_configs_tried: int
    search: str
    ambiguity: dict[str, Any] = field(default_factory=dict)
    study: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = {"fold": self.fold, "params": self.params, "train": self.train.to_json(), "test": self.test.to_json(),
             "in_sample": self.in_sample, "out_of_sample": self.out_of_sample,
             "n_configs_tried": self.n_configs_tried, "search": self.search, "ambiguity": self.ambiguity}
        if self.study is not None:
            d["study"] = self.study
        return d

    @classmethod
    def from_json(cls, f: Fields) -> FoldResult:
        return cls(f.int("fold"), f.mapping("params"), FoldWindow.from_json(f.fields("train")),
                   FoldWindow.from_json(f.fields("test")), f.metrics("in_sample"), f.metrics("out_of_sample"),
                   f.int("n_configs_tried"), f.str("search", choices=("grid", "optuna")),
                   f.mapping("ambiguity", optional=True), f.str("study", optional=True))


@dataclass(frozen=True)
class Judgement:
    """What says whether a row beats chance, and what its costs leave (issue: research that does not fool you).

    Attributes
    ----------
    p_value_vs_random : float
        Share of the random-entry twins (same exit plan, costs and number of entries, placed
        uniformly at random over the same out-of-sample bars, seeded) whose total return is at
        least the row's; NaN when not computed (no trade). Small = unlikely to be luck.
    excess_vs_random_pct : float
        The row's out-of-sample total return minus the twins' median, percentage points.
    twins_median_pct : float
        Median total return of the twins, percent.
    twins_hist : dict
        ``{"edges": [...], "counts": [...]}`` of the twins' total returns (for the dashboard).
    n_twins, twins_seed : int
        How many twins, and the seed they were drawn with.
    n_trials_slot : int
        Configurations that competed for this pair × timeframe: every entry set × parameter set ×
        fold searched for it. The deflated Sharpe of the row counts these trials.
    n_folds : int
        Walk-forward folds of the row (the deployed parameters' window is one of them).
    pbo : float
        Probability of backtest overfitting of the pair × timeframe's search (CSCV, Bailey, Borwein,
        López de Prado & Zhu 2015); NaN when undefined.
    deployed_params : dict
        The parameters that would trade next: the last fold's choice.
    deployed_oos : dict
        Out-of-sample metrics of those parameters on their own test window (the last fold's).
    cost_per_trade_bps : float
        Round-trip costs of one trade: 2 × (fee + slippage), basis points of notional.
    expectancy_gross_pct, expectancy_net_pct : float
        Mean trade return before and after costs, percent (gross = net + the round-trip cost).
    break_even_cost_bps : float
        The round-trip cost at which the row's expectancy is zero (= gross expectancy in bps).
    holdout : dict
        Metrics on the untouched final window (``walk_forward.final_holdout_bars``), else empty.
    """

    p_value_vs_random: float = float("nan")
    excess_vs_random_pct: float = float("nan")
    twins_median_pct: float = float("nan")
    twins_hist: dict[str, Any] = field(default_factory=dict)
    n_twins: int = 0
    twins_seed: int = 0
    n_trials_slot: int = 0
    n_folds: int = 0
    pbo: float = float("nan")
    deployed_params: dict[str, Any] = field(default_factory=dict)
    deployed_oos: dict[str, float] = field(default_factory=dict)
    cost_per_trade_bps: float = float("nan")
    expectancy_gross_pct: float = float("nan")
    expectancy_net_pct: float = float("nan")
    break_even_cost_bps: float = float("nan")
    holdout: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return json_safe({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, f: Fields) -> Judgement:
        return cls(
            p_value_vs_random=f.float("p_value_vs_random", optional=True),
            excess_vs_random_pct=f.float("excess_vs_random_pct", optional=True),
            twins_median_pct=f.float("twins_median_pct", optional=True),
            twins_hist=f.mapping("twins_hist", optional=True), n_twins=f.int("n_twins", optional=True, default=0),
            twins_seed=f.int("twins_seed", optional=True, default=0),
            n_trials_slot=f.int("n_trials_slot", optional=True, default=0),
            n_folds=f.int("n_folds", optional=True, default=0), pbo=f.float("pbo", optional=True),
            deployed_params=f.mapping("deployed_params", optional=True),
            deployed_oos=f.metrics("deployed_oos", optional=True),
            cost_per_trade_bps=f.float("cost_per_trade_bps", optional=True),
            expectancy_gross_pct=f.float("expectancy_gross_pct", optional=True),
            expectancy_net_pct=f.float("expectancy_net_pct", optional=True),
            break_even_cost_bps=f.float("break_even_cost_bps", optional=True),
            holdout=f.metrics("holdout", optional=True),
        )


@dataclass(frozen=True)
class SummaryRow:
    """One row of summary.json: one pair × timeframe × entry set, searched with walk-forward folds.

    Attributes
    ----------
    pair, timeframe, entry_set, signal : str
        ``pair`` is the folder name (``BTCUSDT``); the JSON adds ``symbol`` (``BTC/USDT``).
    params : dict
        Parameters chosen in the last fold (what would trade next).
    exit_plan : ExitPlan
        The exit rules scored. `costs` the fees and slippage the search used.
    in_sample, out_of_sample : dict
        Metrics (:data:`engine.backtest.metrics.METRIC_KEYS`; NaN = undefined, null in JSON).
        In-sample: mean over folds of the chosen parameters' train metrics; out-of-sample: the
        chained test windows.
    walk_forward_efficiency : float
        Out-of-sample / in-sample objective; NaN when undefined.
    folds : tuple of FoldResult
    n_configs_tried : int
        Configurations evaluated over all folds.
    deflated_sharpe : float
        Deflated Sharpe ratio of the out-of-sample returns given those trials (Bailey & López de
        Prado 2014); NaN when undefined.
    param_stability : float
        Share of folds that chose the most frequent parameter set.
    search : "grid" | "optuna"
    ambiguity : dict
        Out-of-sample bars where stop and target were both touched and how they were resolved.
    period : Period
        First and last candle searched; ``bars`` how many.
    gap_policy : "skip" | "ffill"
    data_source : DataSource
        Of the candle file (EXCHANGE, SAMPLE or UNKNOWN); ``exchange`` its ccxt id or None.
    config_id : str
        Id of the research configuration (:func:`engine.research.pipeline.research_config_id`).
    judgement : Judgement
        Chance baseline, trials counted per slot, PBO, the deployed parameters, costs in plain view.
    """

    pair: str
    timeframe: str
    entry_set: str
    signal: str
    params: dict[str, Any]
    exit_plan: ExitPlan
    costs: Costs
    in_sample: dict[str, float]
    out_of_sample: dict[str, float]
    walk_forward_efficiency: float
    folds: tuple[FoldResult, ...]
    n_configs_tried: int
    deflated_sharpe: float
    param_stability: float
    search: str
    ambiguity: dict[str, Any]
    period: Period
    bars: int
    gap_policy: str
    data_source: DataSource
    exchange: str | None
    config_id: str
    judgement: Judgement = field(default_factory=Judgement)

    @property
    def symbol(self) -> str:
        """The ccxt symbol, ``"BTC/USDT"``."""
        return _symbol(self.pair)

    def to_json(self) -> dict[str, Any]:
        """Return the row with keys :data:`SUMMARY_COLUMNS`, in that order, JSON-ready."""
        d: dict[str, Any] = {}
        for name in SUMMARY_COLUMNS:
            value = self.symbol if name == "symbol" else getattr(self, name)
            d[name] = _plain(value)
        return json_safe(d)

    @classmethod
    def from_json(cls, f: Fields) -> SummaryRow:
        return cls(
            pair=f.str("pair"), timeframe=f.str("timeframe"), entry_set=f.str("entry_set"), signal=f.str("signal"),
            params=f.mapping("params"), exit_plan=read_exit_plan(f, "exit_plan"),
            costs=read_costs(f.fields("costs")), in_sample=f.metrics("in_sample"),
            out_of_sample=f.metrics("out_of_sample"),
            walk_forward_efficiency=f.float("walk_forward_efficiency", optional=True),
            folds=tuple(FoldResult.from_json(x) for x in f.items("folds")),
            n_configs_tried=f.int("n_configs_tried"), deflated_sharpe=f.float("deflated_sharpe", optional=True),
            param_stability=f.float("param_stability", optional=True),
            search=f.str("search", choices=("grid", "optuna")), ambiguity=f.mapping("ambiguity", optional=True),
            period=Period.from_fields(f.fields("period")), bars=f.int("bars"),
            gap_policy=f.str("gap_policy"), data_source=f.enum("data_source", DataSource),
            exchange=f.str("exchange", optional=True), config_id=f.str("config_id"),
            judgement=Judgement.from_json(f.fields("judgement")) if f.has("judgement") else Judgement(),
        )


#: Keys of a summary.json row, in order: the fields of :class:`SummaryRow` plus ``symbol``
#: after ``pair`` (a test keeps this list and the record in step).
SUMMARY_COLUMNS: tuple[str, ...] = ("pair", "symbol") + tuple(f.name for f in fields(SummaryRow))[1:]


@dataclass(frozen=True)
class Candidate:
    """The best summary row of one pair × timeframe (chosen in-sample), for promotion to judge.

    The fields of its :class:`SummaryRow` that promotion and the dashboard need, with
    ``metrics`` = the row's ``out_of_sample`` (what promotion judges) and ``curve`` = the path
    of its curve file relative to ``reports_dir`` (``curves/BTCUSDT_5m_ema_cross.json``).
    """

    pair: str
    timeframe: str
    entry_set: str
    signal: str
    params: dict[str, Any]
    exit_plan: ExitPlan
    costs: Costs
    metrics: dict[str, float]
    in_sample: dict[str, float]
    period: Period
    bars: int
    data_source: DataSource
    exchange: str | None
    config_id: str
    curve: str
    n_configs_tried: int
    deflated_sharpe: float
    ambiguity: dict[str, Any] = field(default_factory=dict)
    judgement: Judgement = field(default_factory=Judgement)

    @property
    def symbol(self) -> str:
        """The ccxt symbol, ``"BTC/USDT"``."""
        return _symbol(self.pair)

    @classmethod
    def from_row(cls, row: SummaryRow) -> Candidate:
        """Return the candidate of `row`, its curve at ``curves/<curve_name(...)>``."""
        return cls(pair=row.pair, timeframe=row.timeframe, entry_set=row.entry_set, signal=row.signal,
                   params=row.params, exit_plan=row.exit_plan, costs=row.costs, metrics=row.out_of_sample,
                   in_sample=row.in_sample, period=row.period, bars=row.bars, data_source=row.data_source,
                   exchange=row.exchange, config_id=row.config_id,
                   curve=f"{CURVES_DIR}/{curve_name(row.pair, row.timeframe, row.entry_set)}",
                   n_configs_tried=row.n_configs_tried, deflated_sharpe=row.deflated_sharpe, ambiguity=row.ambiguity,
                   judgement=row.judgement)

    def to_json(self) -> dict[str, Any]:
        """Return the file form: the fields above plus ``symbol``, JSON-ready."""
        d = {"pair": self.pair, "symbol": self.symbol}
        d.update({f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "pair"})
        return json_safe(d)

    @classmethod
    def from_json(cls, f: Fields) -> Candidate:
        return cls(
            pair=f.str("pair"), timeframe=f.str("timeframe"), entry_set=f.str("entry_set"), signal=f.str("signal"),
            params=f.mapping("params"), exit_plan=read_exit_plan(f, "exit_plan"),
            costs=read_costs(f.fields("costs")), metrics=f.metrics("metrics"), in_sample=f.metrics("in_sample"),
            period=Period.from_fields(f.fields("period")), bars=f.int("bars"),
            data_source=f.enum("data_source", DataSource), exchange=f.str("exchange", optional=True),
            config_id=f.str("config_id"), curve=f.str("curve"), n_configs_tried=f.int("n_configs_tried"),
            deflated_sharpe=f.float("deflated_sharpe", optional=True), ambiguity=f.mapping("ambiguity", optional=True),
            judgement=Judgement.from_json(f.fields("judgement")) if f.has("judgement") else Judgement(),
        )


def _plain(value: Any) -> Any:
    """Turn record field values into JSON-ready values (records, enums, tuples, ExitPlan, Costs)."""
    if isinstance(value, (ExitPlan, Costs)):
        return value.to_dict()
    if isinstance(value, DataSource):
        return value.value
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class SummaryReport:
    """summary.json: every row of a research run, its errors and how it ran.

    ``generated_at_ms`` is the run's clock (the replay clock offline; the JSON adds ISO
    ``generated_at``); ``clock`` the reading itself; ``objective`` and ``mode`` the search's;
    ``workers`` the processes used; ``research_s`` the stage's wall time in seconds;
    ``research_stages_s`` the seconds of the jobs' stages and of the kernel inside them, summed over
    the jobs (:mod:`engine.research.timing`);
    ``n_trials_cycle`` the configurations tried over the whole run (every pair × timeframe × entry
    set × parameter set × fold); ``lookahead`` the lookahead gate's check of each entry set in use.
    """

    generated_at_ms: int
    config_id: str
    clock: ClockReading
    objective: str
    mode: str
    workers: int
    research_s: float
    rows: tuple[SummaryRow, ...]
    errors: tuple[StageError, ...] = ()
    n_trials_cycle: int = 0
    lookahead: tuple[dict[str, Any], ...] = ()
    research_stages_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return json_safe({
            "generated_at_ms": self.generated_at_ms, "generated_at": iso_ms(self.generated_at_ms),
            "config_id": self.config_id, "clock": self.clock.to_json(), "objective": self.objective,
            "mode": self.mode, "workers": self.workers, "research_s": round(self.research_s, 3),
            "research_stages_s": {k: round(v, 3) for k, v in self.research_stages_s.items()},
            "n_trials_cycle": self.n_trials_cycle, "lookahead": list(self.lookahead),
            "rows": [r.to_json() for r in self.rows], "errors": [e.to_json() for e in self.errors]})

    @classmethod
    def from_json(cls, f: Fields) -> SummaryReport:
        return cls(f.int("generated_at_ms"), f.str("config_id"), ClockReading.from_json(f.fields("clock")),
                   f.str("objective"), f.str("mode"), f.int("workers"), f.float("research_s"),
                   tuple(SummaryRow.from_json(r) for r in f.items("rows")),
                   tuple(StageError.from_json(e) for e in f.items("errors", optional=True)),
                   f.int("n_trials_cycle", optional=True, default=0),
                   tuple(dict(c.data) for c in f.items("lookahead", optional=True)),
                   _stages(f.data.get("research_stages_s")))


def _stages(value: Any) -> dict[str, float]:
    # research_stages_s of summary.json: informative only, so an odd value reads as none
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass(frozen=True)
class CandidatesReport:
    """strategies.yml.next: the best candidate per pair × timeframe of a research run."""

    generated_at_ms: int
    config_id: str
    objective: str
    candidates: tuple[Candidate, ...]

    def to_json(self) -> dict[str, Any]:
        return {"generated_at": iso_ms(self.generated_at_ms), "config_id": self.config_id,
                "objective": self.objective, "candidates": [c.to_json() for c in self.candidates]}

    @classmethod
    def from_json(cls, f: Fields) -> CandidatesReport:
        return cls(f.iso_ms("generated_at"), f.str("config_id"), f.str("objective"),
                   tuple(Candidate.from_json(c) for c in f.items("candidates")))
