"""Sections of the later stages in the card pattern: dry-run ranking and plans, testnet budget.

``reports_dir/dryrun_plans.json`` (:func:`engine.desk.e2e.dashboard_view`: source, counts, one row
per planned pair with its spread and where the spread came from — ``measured`` or ``estimate (…)``,
kept visible —, entry, take-profit ladder, stop, breakeven, guards, payloads) and
``reports_dir/testnet_budget.json`` (:meth:`engine.desk.limits.Budget.to_json`: day, used, left,
limits, runs). A section appears only when its file exists. Any other JSON of the same kind (a mapping
of facts with one list of records) is shown the same way: the facts, then one card per record.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tools.render.format import cell_text, fmt_value, slug, symbol

#: Cards shown per section (the rest is counted).
MAX_CARDS = 30
#: Keys that name a card (the first present is its title), and the one that ranks it.
TITLE_KEYS = ("pair", "symbol", "profile", "name")
RANK_KEYS = ("rank",)


def _label(key: str) -> str:
    """``spread_pct`` → ``spread [%]``, ``notional_quote`` → ``notional [quote]``, ``n_trades`` → ``trades``."""
    units = (("_pct", " [%]"), ("_quote", " [quote]"), ("_base", " [base]"), ("_bps", " [bps]"), ("_ms", ""),
             ("_s", " [s]"))
    text = key.removeprefix("n_")
    unit = ""
    for suffix, u in units:
        if text.endswith(suffix):
            text, unit = text[: -len(suffix)], u
            break
    return text.replace("_", " ") + unit


def _facts(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Scalars of `data` (and of its nested mappings, one level down) as (label, text)."""
    out = []
    for k, v in data.items():
        if isinstance(v, Mapping) and not prefix:
            out += [(f"{_label(str(k))} · {a}", b) for a, b in _facts(v, prefix=str(k))]
        elif isinstance(v, list):
            if v and not all(isinstance(x, Mapping) for x in v):
                out.append((_label(str(k)), fmt_value(v)[:200]))
        elif not isinstance(v, Mapping):
            out.append((_label(str(k)), cell_text(str(k), v)))
    return out


def _card(record: Mapping[str, Any]) -> dict[str, Any]:
    title_key = next((k for k in TITLE_KEYS if isinstance(record.get(k), str)), None)
    title = symbol(record[title_key]) if title_key in ("pair", "symbol") else (record[title_key] if title_key else "")
    rank = next((record[k] for k in RANK_KEYS if k in record), None)
    spread = None
    if "spread_pct" in record:  # the spread with its source, never one without the other
        source = record.get("spread_source") or record.get("source") or "source not stated"
        spread = f"{cell_text('spread_pct', record['spread_pct'])} % · {source}"
    skip = {title_key, *RANK_KEYS, "spread_pct", "spread_source"} - {None}
    fields = [(_label(str(k)), cell_text(str(k), v) if not isinstance(v, (Mapping, list)) else fmt_value(v)[:200])
              for k, v in record.items() if k not in skip]
    return {"title": title, "rank": rank, "spread": spread, "estimate": bool(spread and "estimate" in spread),
            "fields": fields}


def stage_section(name: str, title: str, data: Any) -> dict[str, Any]:
    """Return a later-stage section's model from its JSON document.

    Returns
    -------
    dict
        ``{"id", "title", "file", "facts": [(label, text)], "cards": [{"title", "rank", "spread",
        "estimate", "fields": [(label, text)]}], "list_label", "more"}``; the cards come from the
        document's first list of records (``rows``, ``runs``, ``ranking`` …), at most :data:`MAX_CARDS`.
    """
    facts: list[tuple[str, str]] = []
    records: list[Mapping[str, Any]] = []
    list_label = None
    if isinstance(data, list):
        records = [r for r in data if isinstance(r, Mapping)]
    elif isinstance(data, Mapping):
        facts = _facts(data)
        for k, v in data.items():
            if isinstance(v, list) and v and all(isinstance(x, Mapping) for x in v):
                records, list_label = list(v), _label(str(k))
                break
    return {"id": slug(name.split(".")[0]), "title": title, "file": name, "facts": facts,
            "cards": [_card(r) for r in records[:MAX_CARDS]], "list_label": list_label,
            "more": max(0, len(records) - MAX_CARDS)}
