"""The kernels' inputs from the one exit model: ExitPlan → (Ladder, plan record), Costs → account record.

The exit rules are declared once (:class:`engine.strategy.exits.ExitPlan`); this is the one place
that turns them into the record the kernel reads by name (:mod:`engine.backtest.records_nb`).
"""
from __future__ import annotations

import numpy as np

from engine.backtest.records_nb import Ladder, RecordArray, account_dt, new_record, plan_dt
from engine.strategy.exits import Costs, ExitPlan


def kernel_plan(exit_plan: ExitPlan) -> tuple[Ladder, RecordArray]:
    """Return the take-profit ladder and the exit-rule record of `exit_plan` for the kernels.

    Returns
    -------
    Ladder
        ``level_frac[k]``: step k's distance as a fraction (0.009 for 0.9 %); ``alloc_frac[k]``
        its share of the entry quantity (0.5 for 50 %); float64 arrays, shape (n_tp,).
    plan_dt record array, shape (1,)
        :data:`engine.backtest.records_nb.plan_dt`: percentages as fractions, NaN = rule off,
        ``max_hold_bars`` -1 = none. Costs, cash and the lot size are not exit rules: they go in
        :func:`kernel_account`.
    """
    p = exit_plan
    ladder = Ladder(np.array([pct / 100.0 for pct, _ in p.tp_ladder], dtype=np.float64),
                    np.array([alloc / 100.0 for _, alloc in p.tp_ladder], dtype=np.float64))
    nan = np.nan
    plan = new_record(
        plan_dt,
        stop_loss_frac=nan if p.sl_pct is None else p.sl_pct / 100.0,
        stop_loss_atr_mult=nan if p.sl_atr_mult is None else p.sl_atr_mult,
        breakeven=p.breakeven,
        breakeven_offset_frac=p.breakeven_offset_pct / 100.0,
        trail_frac=nan if p.trail_pct is None else p.trail_pct / 100.0,
        trail_atr_mult=nan if p.trail_atr_mult is None else p.trail_atr_mult,
        use_exit_signal=p.use_exit_signal,
        max_hold_bars=-1 if p.max_hold_bars is None else p.max_hold_bars,
        check_entry_bar=p.check_entry_bar,
    )
    return ladder, plan


def kernel_account(costs: Costs, initial_cash_quote: float, *, lot_size_base: float | None = None) -> RecordArray:
    """Return the kernels' account record: `costs` with a starting cash and a lot size.

    Parameters
    ----------
    initial_cash_quote : float
        Starting cash, quote currency (> 0; the API checks it).
    lot_size_base : float or None
        Quantities in whole multiples of this many base units (:attr:`ExitPlan.lot_size_base`);
        None = fractional quantities.

    Returns
    -------
    account_dt record array, shape (1,)
        :data:`engine.backtest.records_nb.account_dt`: fee and slippage as fractions
        (:attr:`Costs.fee_rate`, :attr:`Costs.slippage_rate`), ``lot_size_base`` 0.0 for None.
    """
    return new_record(account_dt, initial_cash_quote=float(initial_cash_quote), fee_rate=costs.fee_rate,
                      slippage_rate=costs.slippage_rate,
                      lot_size_base=0.0 if lot_size_base is None else float(lot_size_base))
