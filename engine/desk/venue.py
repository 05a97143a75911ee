"""Where a desk session's orders go: the exchange's testnet, its validate-only path, or paper.

:func:`choose_venue` decides, and says why in words the orchestrator prints:

=============  ==================================================================================
venue          when
=============  ==================================================================================
sandbox        the exchange's testnet keys are set (``<EXCHANGE>_TESTNET_API_KEY`` / ``_SECRET``)
               and ccxt knows its sandbox (binance spot: ``https://testnet.binance.vision``): orders
               go to the testnet through :class:`SandboxExecutor`
validate-only  testnet keys are set but the exchange has no spot sandbox and has a validate-only path
               (Kraken spot: ``AddOrder`` with ``validate=true`` on the real API; checked, never
               placed), signed with the testnet keys entry
paper          otherwise (no keys, Bitvavo, ``--venue paper``): the paper executor (dry-run shadow
               orders, fills by the simulator's rules); nothing leaves
=============  ==================================================================================

Every order of every venue first passes the execution guards (:func:`engine.execution.guards.decide`:
kill switch, notional and exposure limits) and the session's own limits. A testnet order is not a
real order, so the real-money live conditions (``ALLOW_LIVE``, ``runtime.exec_enabled``, the go-live
gate) do not gate it; instead :func:`sandbox_blockers` must be empty, and :class:`SandboxExecutor`
refuses to send unless its ccxt client is in sandbox mode — it cannot reach the real exchange.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from engine.errors import ConfigError, GuardError
from engine.exchange.client import has_sandbox, make_exchange
from engine.exchange.orders import ORDER_FEATURES
from engine.execution.ccxt_executor import CcxtExecutor
from engine.execution.guards import ExecutorMode
from engine.execution.tunables import has_keys

VenueKind = Literal["sandbox", "validate-only", "paper"]


@dataclass(frozen=True)
class Venue:
    """The venue of a session and why it was chosen.

    Attributes
    ----------
    kind : {"sandbox", "validate-only", "paper"}
    exchange : str
        ccxt id of the exchange the session is about.
    reason : str
        One sentence for the plan, the log and the report.
    """

    kind: VenueKind
    exchange: str
    reason: str

    @property
    def executor_mode(self) -> ExecutorMode:
        """The executor mode the guards are asked for: ``live`` on the testnet, ``validate-only``, ``dry-run``."""
        return {"sandbox": "live", "validate-only": "validate-only", "paper": "dry-run"}[self.kind]

    @property
    def sends_orders(self) -> bool:
        return self.kind != "paper"


def testnet_secrets(secrets: Mapping[str, str], exchange_id: str) -> dict[str, str]:
    """Return the exchange's testnet keys under the names the ccxt executor reads (``<EX>_API_KEY``)."""
    p = exchange_id.upper()
    out = {f"{p}_API_KEY": secrets.get(f"{p}_TESTNET_API_KEY", ""),
           f"{p}_API_SECRET": secrets.get(f"{p}_TESTNET_API_SECRET", "")}
    if secrets.get(f"{p}_OPERATOR_ID"):
        out[f"{p}_OPERATOR_ID"] = secrets[f"{p}_OPERATOR_ID"]
    return out


def choose_venue(exchange_id: str, secrets: Mapping[str, str], *, want: str = "auto") -> Venue:
    """Decide where a session's orders go (see the module's table).

    Parameters
    ----------
    exchange_id : str
        ccxt id (the profile's exchange, else ``runtime.exchange``).
    secrets : mapping
        :func:`engine.execution.tunables.load_secrets`.
    want : {"auto", "paper"}
        ``paper`` forces the paper venue even with keys.

    Raises
    ------
    ConfigError
        An exchange ccxt does not know (with a "did you mean"), or `want` not auto/paper.
    """
    if want not in ("auto", "paper"):
        raise ConfigError(f"venue {want!r}: expected auto or paper")
    sandbox = has_sandbox(exchange_id)  # also checks the id
    p = exchange_id.upper()
    if want == "paper":
        return Venue("paper", exchange_id, "paper session (--venue paper): dry-run shadow orders, paper fills; "
                                           "nothing is sent to any exchange")
    if not has_keys(secrets, exchange_id, testnet=True):
        return Venue("paper", exchange_id, f"paper session: no {p}_TESTNET_API_KEY / {p}_TESTNET_API_SECRET in .env "
                                           "or the environment, so nothing is sent to any exchange")
    if sandbox and exchange_id in ORDER_FEATURES:
        return Venue("sandbox", exchange_id, f"{exchange_id} testnet (ccxt sandbox mode): orders go to the testnet, "
                                             f"signed with {p}_TESTNET_API_KEY; no real money")
    features = ORDER_FEATURES.get(exchange_id)
    if features is not None and features.validate_params is not None:
        return Venue("validate-only", exchange_id,
                     f"{exchange_id} has no spot sandbox (ccxt knows no testnet URLs for it): orders go to its "
                     f"validate-only path ({features.validate_path}; checked by the exchange, never placed), "
                     f"signed with {p}_TESTNET_API_KEY")
    why = features.validate_rule if features is not None else f"SCALP places no orders on {exchange_id}"
    return Venue("paper", exchange_id, f"paper session: {exchange_id} has no spot sandbox and no validate-only path "
                                       f"({why})")


def sandbox_blockers(venue: Venue, secrets: Mapping[str, str]) -> list[str]:
    """Why a testnet order may not leave (empty: it may). Passed to the guards as their live reasons."""
    out = []
    if venue.kind != "sandbox":
        out.append(f"venue is {venue.kind}, not sandbox")
    if not has_keys(secrets, venue.exchange, testnet=True):
        p = venue.exchange.upper()
        out.append(f"no {p}_TESTNET_API_KEY / _API_SECRET in .env or the environment")
    return out


class SandboxExecutor(CcxtExecutor):
    """Orders on the exchange's testnet: a :class:`CcxtExecutor` in ``live`` mode whose ccxt client is
    made with ``sandbox=True`` and signed with the testnet keys.

    Before every request it checks that the client is in sandbox mode (``isSandboxModeEnabled``),
    so it can never send an order to the real exchange.

    Parameters
    ----------
    exchange_id : str
        An exchange with a sandbox (:func:`engine.exchange.client.has_sandbox`).
    secrets : mapping
        :func:`~engine.execution.tunables.load_secrets` (its ``<EX>_TESTNET_API_KEY``/``_SECRET`` are used).
    **kwargs
        As :class:`CcxtExecutor` (``log``, ``urls`` — a test server standing in for the testnet —, ``timeout_ms`` …).
    """

    def __init__(self, exchange_id: str, *, secrets: Mapping[str, str], **kwargs) -> None:
        if not has_sandbox(exchange_id):
            raise ConfigError(f"{exchange_id}: ccxt knows no sandbox for it; a SandboxExecutor cannot be made")
        super().__init__(exchange_id, "live", secrets=testnet_secrets(secrets, exchange_id), **kwargs)

    def __repr__(self) -> str:  # never the secrets
        return f"SandboxExecutor({self.exchange_id!r})"

    def _require_keys(self) -> None:
        if not has_keys(self._secrets, self.exchange_id):
            p = self.exchange_id.upper()
            raise GuardError(f"{self.exchange_id} testnet: no {p}_TESTNET_API_KEY / {p}_TESTNET_API_SECRET in .env or "
                             "the environment; nothing sent")

    def client(self):
        """The signing ccxt client in sandbox mode (made on first use, after the key check).

        Raises
        ------
        GuardError
            Testnet keys missing, or the client is not in sandbox mode.
        """
        self._require_keys()
        if self._exchange is None:
            p = self.exchange_id.upper()
            exchange = make_exchange(self.exchange_id, urls=self.urls, timeout_ms=self.timeout_ms, sandbox=True)
            exchange.apiKey, exchange.secret = self._secrets[f"{p}_API_KEY"], self._secrets[f"{p}_API_SECRET"]
            if self.rate_limit_ms is not None:
                exchange.rateLimit = int(self.rate_limit_ms)
            self._exchange = exchange
        if not getattr(self._exchange, "isSandboxModeEnabled", False):
            raise GuardError(f"{self.exchange_id}: the client is not in sandbox mode; a testnet session sends nothing "
                             "to the real exchange")
        return self._exchange


def make_venue_executor(venue: Venue, secrets: Mapping[str, str], **kwargs) -> CcxtExecutor | None:
    """The executor of an exchange venue (None for paper): :class:`SandboxExecutor` or a
    validate-only :class:`CcxtExecutor` signed with the testnet keys."""
    if venue.kind == "sandbox":
        return SandboxExecutor(venue.exchange, secrets=secrets, **kwargs)
    if venue.kind == "validate-only":
        return CcxtExecutor(venue.exchange, "validate-only", secrets=testnet_secrets(secrets, venue.exchange), **kwargs)
    return None
