"""The order rules of each exchange (engine/exchange/orders.py); the calls themselves are tested
through the executor against the local exchange server (tests/engine/execution/test_executors.py)."""
from __future__ import annotations

import uuid

import pytest

from engine.errors import ConfigError, PayloadError
from engine.exchange import SUPPORTED_EXCHANGES
from engine.exchange.orders import ORDER_FEATURES, exchange_client_id, order_features, validate_params


def test_every_supported_exchange_has_order_rules_with_a_source():
    assert tuple(ORDER_FEATURES) == SUPPORTED_EXCHANGES
    for features in ORDER_FEATURES.values():
        assert "https://" in features.validate_rule and "https://" in features.trailing_rule
    with pytest.raises(ConfigError, match="exchange 'coinbase': SCALP places orders only on binance, kraken, bitvavo"):
        order_features("coinbase")


@pytest.mark.parametrize("exchange_id, client_id, kept", [
    ("binance", "scalp-12345-1", True),
    ("binance", "s" * 37, False),               # newClientOrderId ≤ 36 characters
    ("kraken", "scalp-12345-123456", True),     # 18 characters
    ("kraken", "scalp-12345-1234567", False),   # 19: cl_ord_id free text ≤ 18
    ("bitvavo", "scalp-1-1", False),            # clientOrderId is always a UUID
])
def test_a_client_id_the_exchange_cannot_take_goes_out_as_a_uuid_derived_from_it(exchange_id, client_id, kept):
    sent = exchange_client_id(exchange_id, client_id)
    assert sent == (client_id if kept else str(uuid.uuid5(uuid.NAMESPACE_URL, "scalp:" + client_id)))
    assert exchange_client_id(exchange_id, client_id) == sent  # the same id every time: reconcilable


def test_validate_flags_follow_each_exchanges_path():
    assert validate_params("binance", {}) == {"test": True}  # POST /api/v3/order/test
    assert validate_params("kraken", {}) == {"validate": "true"}  # form body: validate=true, never "True"
    assert validate_params("kraken", {"trailingPercent": "1.5"}) == {"validate": True}  # ccxt sends JSON there
    with pytest.raises(PayloadError, match="bitvavo: validate-only refused: Bitvavo has no validate-only"):
        validate_params("bitvavo", {})
