"""Kraken REST ``POST /0/private/AddOrder`` fields from a WS v2 ``add_order`` message, and a parity check.

The same order can go over REST (ccxt) or WebSocket v2; this module maps one onto the other field by
field, so an order plan yields the same order whichever transport sends it. Sources: REST AddOrder
https://docs.kraken.com/api/docs/rest-api/add-order and the OpenAPI spec ``krakenfx/api-specs``
(``add.yaml``, ``oflags.yaml``, ``ordertype.yaml``); the mapping table of the project's exchange notes.

Mapping highlights: ``order_type``→``ordertype``, ``side``→``type``, ``order_qty``→``volume`` (a
string); for triggered types REST ``price`` is the *trigger* and ``price2`` the limit; relative prices
carry a sign (``+``/``-``) and ``%`` for pct; trailing offsets are ``+`` (direction automatic);
``post_only``→``oflags=post``; ``time_in_force`` upper case; ``stp_type`` underscores → ``stptype``
hyphens; ``conditional`` → ``close[ordertype]``, ``close[price]``, ``close[price2]``.
"""
from __future__ import annotations

from typing import Any, Mapping

from engine.errors import PayloadError
from engine.execution.kraken_rules import LIMIT_TYPES, TRIGGERED_TYPES


def _num(x: Any) -> str:
    """REST numbers are decimal strings: 28440 → "28440", 0.001 → "0.001"."""
    return format(float(x), "f").rstrip("0").rstrip(".") if float(x) != int(float(x)) else str(int(float(x)))


def _rel(price: Any, price_type: str, *, trailing: bool = False) -> str:
    if price_type == "static":
        return _num(price)
    sign = "+" if trailing or float(price) >= 0 else "-"
    body = _num(abs(float(price)))
    return f"{sign}{body}%" if price_type == "pct" else f"{sign}{body}"


def rest_pair(symbol: str, pairs: Mapping[str, str] | None = None) -> str:
    """Return the REST pair name of a v2 symbol: ``BTC/USD`` → ``XBTUSD`` (Kraken's altname).

    `pairs` maps v2 ``wsname`` → REST altname (from the asset pairs endpoint); without it the v2
    base ``BTC`` becomes Kraken's ``XBT`` and the slash goes.
    """
    if pairs and symbol in pairs:
        return pairs[symbol]
    base, _, quote = symbol.partition("/")
    return ("XBT" if base == "BTC" else base) + quote


def to_rest(message: Mapping[str, Any], *, pairs: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the REST AddOrder body (without ``nonce``) of a WS v2 ``add_order`` message.

    Raises
    ------
    PayloadError
        If `message` is not an add_order, or uses a field with no REST counterpart (``cash_order_qty``
        is mapped through ``oflags=viqc``; ``margin: true`` has none in SCALP).
    """
    if message.get("method") != "add_order":
        raise PayloadError(f"REST mapping: method {message.get('method')!r}, expected add_order")
    p = message["params"]
    otype = p["order_type"]
    body: dict[str, str] = {"ordertype": otype, "type": p["side"], "volume": _num(p["order_qty"]),
                            "pair": rest_pair(p["symbol"], pairs)}
    trailing = otype.startswith("trailing-stop")
    if otype in TRIGGERED_TYPES:
        t = p["triggers"]
        body["price"] = _rel(t["price"], t.get("price_type", "static"), trailing=trailing)
        if "reference" in t:
            body["trigger"] = t["reference"]
        if otype in LIMIT_TYPES:
            body["price2"] = _rel(p["limit_price"], p.get("limit_price_type", "quote" if trailing else "static"))
    elif otype in LIMIT_TYPES:
        body["price"] = _num(p["limit_price"])
    flags = []
    if p.get("post_only"):
        flags.append("post")
    if p.get("fee_preference"):
        flags.append("fcib" if p["fee_preference"] == "base" else "fciq")
    if "cash_order_qty" in p:
        flags.append("viqc")
        body["volume"] = _num(p["cash_order_qty"])
    if flags:
        body["oflags"] = ",".join(flags)
    if "time_in_force" in p:
        body["timeinforce"] = p["time_in_force"].upper()
    if "expire_time" in p:
        body["expiretm"] = p["expire_time"]
    if "deadline" in p:
        body["deadline"] = p["deadline"]
    if "cl_ord_id" in p:
        body["cl_ord_id"] = p["cl_ord_id"]
    if "order_userref" in p:
        body["userref"] = str(p["order_userref"])
    if "stp_type" in p:
        body["stptype"] = p["stp_type"].replace("_", "-")
    if "display_qty" in p:
        body["displayvol"] = _num(p["display_qty"])
    if p.get("margin"):
        raise PayloadError("REST mapping: margin orders have no REST counterpart in SCALP (spot only)")
    if p.get("validate"):
        body["validate"] = "true"  # sent only when meant: Kraken reads the key's presence (exchange notes, B)
    c = p.get("conditional")
    if c:
        ctype = c["order_type"]
        body["close[ordertype]"] = ctype
        if ctype in TRIGGERED_TYPES:
            body["close[price]"] = _rel(c["trigger_price"], c.get("trigger_price_type", "static"),
                                        trailing=ctype.startswith("trailing-stop"))
            if ctype in LIMIT_TYPES:
                body["close[price2]"] = _num(c["limit_price"])
        else:
            body["close[price]"] = _num(c["limit_price"])
    return body


def parity(message: Mapping[str, Any], body: Mapping[str, str], *, pairs: Mapping[str, str] | None = None) -> list[str]:
    """Return the differences between a WS v2 add_order and a REST AddOrder body (empty: same order).

    Each difference reads ``field: REST has X, the WS message means Y``.
    """
    want = to_rest(message, pairs=pairs)
    diffs = []
    for key in sorted(set(want) | set(body)):
        if key == "nonce":
            continue
        if str(body.get(key)) != str(want.get(key)):
            diffs.append(f"{key}: REST has {body.get(key)!r}, the WS message means {want.get(key)!r}")
    return diffs
