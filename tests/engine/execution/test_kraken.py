"""Kraken WS v2 payloads: every documented order type builds; every documented violation is named;
the REST mapping matches; the probe CLI prints valid JSON. Nothing is sent anywhere."""
from __future__ import annotations

import copy
import json

import pytest

from engine.errors import PayloadError
from engine.execution import kraken_payloads as kp
from engine.execution.kraken_rest import parity, to_rest
from engine.execution.kraken_rules import ORDER_TYPES, RULES, broken_rules

NOW = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC
DEADLINE = kp.rfc3339_ms(NOW + 5000)


def msg(**params):
    base = {"order_type": "limit", "side": "buy", "order_qty": 1.25, "symbol": "BTC/USD", "limit_price": 27500,
            "token": "t"}
    base.update(params)
    return {"method": "add_order", "params": {k: v for k, v in base.items() if v is not None}}


@pytest.mark.parametrize("order_type", [t for t in ORDER_TYPES if t != "settle-position"])
def test_every_documented_order_type_builds(order_type):
    kwargs = {}
    if order_type in ("limit", "iceberg", "stop-loss-limit", "take-profit-limit", "trailing-stop-limit"):
        kwargs["limit_price"] = 27_400 if not order_type.startswith("trailing") else 0
    if order_type.startswith(("stop-loss", "take-profit")):
        kwargs["trigger"] = kp.Trigger(27_500)
    if order_type.startswith("trailing"):
        kwargs["trigger"] = kp.Trigger(1.5, price_type="pct")
    m = kp.add_order(symbol="BTC/USD", side="sell", order_qty=0.01, order_type=order_type, now_ms=NOW, **kwargs)
    assert m["params"]["order_type"] == order_type and m["params"]["validate"] is True
    assert m["params"]["margin"] is False and "reduce_only" not in m["params"]
    assert m["params"]["deadline"] == DEADLINE and m["params"]["stp_type"] == "cancel_newest"
    assert m["params"]["time_in_force"] == "gtc" and broken_rules(m, NOW) == []


def test_limit_with_oto_stop_loss_limit_is_one_message():
    m = kp.add_order(symbol="BTC/USD", side="buy", order_qty=0.001, limit_price=28440, post_only=True, now_ms=NOW,
                     secondary=kp.Secondary("stop-loss-limit", limit_price=28400, trigger_price=28410),
                     cl_ord_id="scalp-1")
    assert m["params"]["conditional"] == {"order_type": "stop-loss-limit", "limit_price": 28400, "trigger_price": 28410}
    assert m["params"]["post_only"] is True and m["params"]["cl_ord_id"] == "scalp-1"


@pytest.mark.parametrize("change, rule", [
    ({"order_type": "stop"}, "order_type.known"),
    ({"side": "long"}, "side.known"),
    ({"order_qty": 0}, "order_qty.positive"),
    ({"order_qty": -1}, "order_qty.positive"),
    ({"symbol": "XBTUSD"}, "symbol.format"),
    ({"token": None}, "params.required"),
    ({"limit_price": None}, "limit_price.required"),
    ({"order_type": "market"}, "limit_price.forbidden"),
    ({"order_type": "stop-loss", "limit_price": None}, "triggers.required"),
    ({"triggers": {"price": 27000}}, "triggers.forbidden"),
    ({"order_type": "stop-loss-limit", "triggers": {"price_type": "pct"}}, "triggers.price.required"),
    ({"order_type": "stop-loss-limit", "triggers": {"price": 1, "price_type": "percent"}}, "triggers.price_type.known"),
    ({"order_type": "stop-loss-limit", "triggers": {"price": 1, "reference": "mark"}}, "triggers.reference.known"),
    ({"order_type": "trailing-stop", "limit_price": None, "triggers": {"price": -2, "price_type": "pct"}},
     "triggers.trailing_offset"),
    ({"order_type": "trailing-stop", "limit_price": None, "triggers": {"price": 2}}, "triggers.trailing_offset"),
    ({"limit_price_type": "pct"}, "limit_price_type.trailing_only"),
    ({"time_in_force": "day"}, "time_in_force.known"),
    ({"order_type": "stop-loss-limit", "triggers": {"price": 27600}, "time_in_force": "fok"}, "time_in_force.fok_limit_only"),
    ({"order_type": "market", "limit_price": None, "post_only": True}, "post_only.limit_price_only"),
    ({"expire_time": "2023-11-20T00:00:00Z"}, "expire_time.gtd_only"),
    ({"time_in_force": "gtd"}, "expire_time.required"),
    ({"time_in_force": "gtd", "expire_time": "2024-01-20T00:00:00Z"}, "expire_time.max_one_month"),
    ({"time_in_force": "gtd", "expire_time": "next week"}, "time.format"),
    ({"deadline": kp.rfc3339_ms(NOW + 100)}, "deadline.window"),
    ({"deadline": kp.rfc3339_ms(NOW + 61_000)}, "deadline.window"),
    ({"deadline": "2023-11-14T22:13:25Z"}, "time.format"),
    ({"cl_ord_id": "a-client-order-id-too-long"}, "cl_ord_id.format"),
    ({"cl_ord_id": "abc", "order_userref": 7}, "cl_ord_id.userref_exclusive"),
    ({"order_userref": "7"}, "order_userref.integer"),
    ({"conditional": [{"order_type": "stop-loss", "trigger_price": 1}, {"order_type": "take-profit", "trigger_price": 2}]},
     "conditional.object"),
    ({"conditional": {"order_type": "market"}}, "conditional.order_type.known"),
    ({"conditional": {"order_type": "iceberg", "limit_price": 1}}, "conditional.order_type.known"),
    ({"conditional": {"order_type": "stop-loss-limit", "trigger_price": 27000}}, "conditional.limit_price.required"),
    ({"conditional": {"order_type": "stop-loss"}}, "conditional.trigger_price.required"),
    ({"display_qty": 1}, "display_qty.iceberg_only"),
    ({"order_type": "iceberg", "display_qty": 0.01}, "display_qty.min"),
    ({"order_type": "market", "limit_price": None, "side": "sell", "cash_order_qty": 100}, "cash_order_qty.buy_market_only"),
    ({"stp_type": "cancel-newest"}, "stp_type.known"),
    ({"fee_preference": "usd"}, "fee_preference.known"),
    ({"post_only": "yes"}, "boolean.type"),
    ({"margin": True}, "project.spot_only"),
    ({"reduce_only": True}, "project.no_reduce_only"),
    ({"leverage": "5"}, "params.unknown_field"),
])
def test_every_documented_violation_is_rejected_with_its_rule(change, rule):
    m = msg(**change)
    assert rule in broken_rules(m, NOW), (change, broken_rules(m, NOW))
    assert rule in RULES


def test_builders_raise_naming_the_rule():
    with pytest.raises(PayloadError, match=r"kraken add_order: deadline.window \(deadline lies 500 ms to 60 s"):
        kp.add_order(symbol="BTC/USD", side="buy", order_qty=1, limit_price=1, deadline_ms=100, now_ms=NOW)
    with pytest.raises(PayloadError, match="triggers.required"):
        kp.add_order(symbol="BTC/USD", side="sell", order_qty=1, order_type="stop-loss", now_ms=NOW)


def test_amend_edit_cancel_and_batch():
    be = kp.amend_order(order_id="OABCDE-12345-FGHIJK", trigger_price=28_450.0, now_ms=NOW)  # breakeven move
    assert be["params"]["trigger_price"] == 28450 and be["params"]["trigger_price_type"] == "static"
    assert "amend.order_id_required" in broken_rules({"method": "amend_order", "params": {"token": "t"}}, NOW)
    ed = kp.edit_order(order_id="O1", symbol="BTC/USD", limit_price=28_000, now_ms=NOW)
    assert broken_rules(ed, NOW) == []
    assert "edit.no_cl_ord_id" in broken_rules({"method": "edit_order", "params": {
        "order_id": "O1", "symbol": "BTC/USD", "token": "t", "cl_ord_id": "x"}}, NOW)
    assert "edit.required" in broken_rules({"method": "edit_order", "params": {"order_id": "O1", "token": "t"}}, NOW)
    cx = kp.cancel_order(order_ids=["O1", "O2"], now_ms=NOW)
    assert cx["params"]["order_id"] == ["O1", "O2"]
    assert "cancel.arrays" in broken_rules({"method": "cancel_order", "params": {"order_id": "O1", "token": "t"}}, NOW)
    assert "cancel.id_required" in broken_rules({"method": "cancel_order", "params": {"token": "t"}}, NOW)
    orders = [{"order_type": "limit", "side": "buy", "order_qty": 0.1, "limit_price": 27_000},
              {"order_type": "limit", "side": "sell", "order_qty": 0.1, "limit_price": 29_000}]
    batch = kp.batch_add(symbol="BTC/USD", orders=orders, now_ms=NOW)
    assert len(batch["params"]["orders"]) == 2 and batch["params"]["validate"] is True
    with pytest.raises(PayloadError, match="batch.orders"):
        kp.batch_add(symbol="BTC/USD", orders=orders[:1], now_ms=NOW)
    assert "method.known" in broken_rules({"method": "add_orders", "params": {}}, NOW)
    assert broken_rules([1, 2], NOW) == ["message.shape"]


def test_rest_mapping_matches_kraken_example_and_parity_holds():
    # Kraken's OpenAPI example request (add_example.yaml) and the WS v2 message that means the same order
    rest = {"nonce": 163245617, "ordertype": "limit", "type": "buy", "volume": "1.25", "pair": "XBTUSD",
            "price": "27500", "cl_ord_id": "6d1b345e-2821-40e2-ad83-4ecb18a06876"}
    ws = msg(cl_ord_id="6d1b345e-2821-40e2-ad83-4ecb18a06876")
    assert broken_rules(ws, NOW) == []
    assert parity(ws, {k: str(v) for k, v in rest.items()}) == []
    bad = dict(rest, price="27600")
    assert parity(ws, {k: str(v) for k, v in bad.items()}) == ["price: REST has '27600', the WS message means '27500'"]


@pytest.mark.parametrize("params, expected", [
    ({"order_type": "stop-loss-limit", "triggers": {"price": 28410}, "limit_price": 28400, "side": "sell"},
     {"ordertype": "stop-loss-limit", "price": "28410", "price2": "28400"}),
    ({"order_type": "take-profit", "limit_price": None, "triggers": {"price": 5, "price_type": "pct"}, "side": "sell"},
     {"ordertype": "take-profit", "price": "+5%"}),
    ({"order_type": "stop-loss", "limit_price": None, "triggers": {"price": -150, "price_type": "quote"}, "side": "sell"},
     {"ordertype": "stop-loss", "price": "-150"}),
    ({"order_type": "trailing-stop", "limit_price": None, "triggers": {"price": 2, "price_type": "pct"}, "side": "sell"},
     {"ordertype": "trailing-stop", "price": "+2%"}),
    ({"post_only": True, "time_in_force": "ioc", "stp_type": "cancel_both"},
     {"oflags": "post", "timeinforce": "IOC", "stptype": "cancel-both"}),
    ({"conditional": {"order_type": "stop-loss-limit", "trigger_price": 27000, "limit_price": 26900}},
     {"close[ordertype]": "stop-loss-limit", "close[price]": "27000", "close[price2]": "26900"}),
])
def test_rest_fields_of_each_kind(params, expected):
    m = msg(**params)
    assert broken_rules(m, NOW) == []
    body = to_rest(m)
    for key, value in expected.items():
        assert body[key] == value, (key, body)
    assert parity(m, body) == []


def test_probe_cli_prints_valid_json(capsys, tmp_path):
    from engine.execution import ws_payload_probe as probe

    assert probe.main(["--symbol", "BTC/USD", "--side", "buy", "--qty", "0.001", "--limit", "28440", "--sl", "28410",
                       "--sl_limit", "28400", "--tif", "gtc", "--post_only", "1", "--validate", "1"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["method"] == "add_order" and m["params"]["order_type"] == "limit" and m["params"]["validate"] is True
    assert m["params"]["conditional"] == {"order_type": "stop-loss-limit", "limit_price": 28400, "trigger_price": 28410}
    assert probe.main(["--symbol", "BTC/USD", "--side", "sell", "--qty", "0.001", "--tp", "28600", "--tp_limit", "28590",
                       "--standalone_tp", "1"]) == 0
    tp = json.loads(capsys.readouterr().out)
    assert tp["params"]["order_type"] == "take-profit-limit" and tp["params"]["triggers"] == {"price": 28600}
    assert "conditional" not in tp["params"]
    good = kp.add_order(symbol="BTC/USD", side="buy", order_qty=1, limit_price=1, now_ms=NOW)
    bad = copy.deepcopy(good)
    bad["params"]["margin"] = True
    late = copy.deepcopy(good)
    (tmp_path / "m.json").write_text(json.dumps([good, bad, late]))
    assert probe.main(["--check", str(tmp_path / "m.json"), "--now-ms", str(NOW)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"index": 0, "accepted": True, "rules": []}
    assert lines[1] == {"index": 1, "accepted": False, "rules": ["project.spot_only"]}
    assert probe.main(["--check", str(tmp_path / "m.json"), "--now-ms", str(NOW + 10_000)]) == 0
    assert all("deadline.window" in json.loads(x)["rules"] for x in capsys.readouterr().out.splitlines())
    (tmp_path / "bad.json").write_text("{not json")
    assert probe.main(["--check", str(tmp_path / "bad.json")]) == 2
    assert "not readable JSON" in capsys.readouterr().err
