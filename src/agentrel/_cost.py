"""What self-healing costs in dollars: prices, ``agentrel.cost``, unpriced tokens.

Prices come from ``configure(prices={model: (input, output, cached input)})`` (US dollars per
million tokens) and, for every other model, from the optional ``genai-prices`` package
(``agentrel-otel[cost]``), imported lazily on the first lookup. Its bundled price table is used as
it is: its price updater is never started, so nothing goes to the network. Without the package
and without a mapping, pricing is off: nothing is computed and no cost metric is exported.

Costs are computed where tokens get their disposition (a run's end, or a call's end outside a
run), from the same token dictionaries as ``agentrel.tokens``: never on a tool's hot path.
Cached input tokens ride in those dictionaries under two extra token types
(:data:`CACHE_READ`, :data:`CACHE_WRITE`), *subsets* of the input tokens that every token
count skips (:func:`total`), so they follow the input tokens through every change of
disposition (a failed attempt, a rejection, a failed run) without extra bookkeeping.

Arithmetic is :class:`decimal.Decimal`: ``tokens × $/Mtok ÷ 10^6`` is exact, summed exactly
per (model, disposition); the one rounding is the conversion of that sum to the nearest float
when it is added to the counter or returned by ``Run.cost_usd``.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from . import _catalogue as cat
from ._guard import logger, telemetry_error
from ._instrumentor import DIST
from ._tokens import CACHE_READ, CACHE_WRITE, SUBSETS, Tokens

__all__ = [
    "CACHE_READ",
    "CACHE_WRITE",
    "PRICING",
    "SUBSETS",
    "Priced",
    "Pricing",
    "Rates",
    "amounts",
    "cost",
    "rates",
]

_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)


class Rates(NamedTuple):
    """US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal


_RESOLVED_MAX = 4096  # model names come from code and provider answers: bounded anyway


def _library_available() -> bool:
    try:
        return importlib.util.find_spec("genai_prices") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["genai_prices"] = None
        return False


# --- configuration ---------------------------------------------------------------------------
def _price(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, str)):
        raise TypeError(f"prices: {what} must be a number of US dollars per million tokens")
    try:
        # str() first: 2.5 means Decimal("2.5"), not the binary fraction nearest to it
        d = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"prices: {what} is not a number: {value!r}") from None
    if not d.is_finite() or d < 0:
        raise ValueError(f"prices: {what} must be a finite number >= 0, got {value!r}")
    return d


def validate(prices: object) -> tuple[bool, dict[str, Rates]]:
    """Check ``configure(prices=...)``; return (use genai-prices, the override table).

    ``None``: genai-prices when installed. ``False``: no pricing at all. A mapping
    ``{model: (input, output, cached_input)}`` in $/Mtok: these models at these prices
    (cache writes at the input price), every other model from genai-prices when installed.
    """
    if prices is None:
        return True, {}
    if prices is False:
        return False, {}
    if not isinstance(prices, Mapping):
        raise TypeError(
            "prices must be None, False or a mapping {model: (input, output, cached_input)} "
            f"in US dollars per million tokens, got {type(prices).__name__}"
        )
    table: dict[str, Rates] = {}
    for model, rates in prices.items():
        if not isinstance(model, str) or not model:
            raise TypeError(f"prices: every model must be a non-empty str, got {model!r}")
        if isinstance(rates, (str, bytes)) or not isinstance(rates, (tuple, list)):
            raise TypeError(
                f"prices[{model!r}] must be a tuple (input, output, cached_input), got {rates!r}"
            )
        if len(rates) != 3:
            raise ValueError(
                f"prices[{model!r}] must have 3 prices (input, output, cached_input), "
                f"got {len(rates)}"
            )
        i, o, c = (
            _price(v, f"prices[{model!r}][{n}]")
            for n, v in zip(("input", "output", "cached_input"), rates, strict=True)
        )
        table[model] = Rates(i, o, c, i)
    return True, table


Amounts = tuple[list[tuple[float, dict[str, str]]], list[tuple[int, dict[str, str]]]]


class Priced(NamedTuple):
    """What the tokens of a scope that just got their disposition cost: ``agentrel.cost``
    points (dollars, attributes), ``agentrel.cost.unpriced_tokens`` points (tokens,
    attributes), and the exact (all, wasted) dollars for the run's span."""

    spent: list[tuple[float, dict[str, str]]]
    unpriced: list[tuple[int, dict[str, str]]]
    usd: tuple[Decimal, Decimal]


class Pricing:
    """The one owner of pricing state: the configured table, whether genai-prices is used,
    resolved prices and attribute caches. ``enabled``: whether any price source exists (the
    core tests it first: one attribute read)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._overrides: dict[str, Rates] = {}
        self._use_library = True
        self._library: Any = None  # the genai_prices module once imported; False if missing
        self._said_missing = False
        self._resolved: dict[str | None, Rates | None] = {}
        self._attrs: dict[tuple[str | None, str | None, str | None, str], dict[str, str]] = {}
        self._unpriced_attrs: dict[str | None, dict[str, str]] = {}
        self.enabled = _library_available()

    # -- configuration ---------------------------------------------------------------------
    def set_prices(self, use_library: bool, table: Mapping[str, Rates]) -> None:
        """Apply a validated price configuration (``configure``); forget resolved prices."""
        with self._lock:
            self._use_library = use_library
            self._overrides.clear()
            self._overrides.update(table)
            self._resolved.clear()
            self.enabled = bool(self._overrides) or (
                use_library and self._library is not False and _library_available()
            )
        if self.enabled and use_library:
            self._load_library()  # import now (~0.3 s), not on the first run's end

    def reset(self) -> None:
        """Back to the defaults (``testing.reset()``)."""
        self._library = None
        self._said_missing = False
        self.set_prices(True, {})

    def say_if_missing(self) -> None:
        """Once per process, at ``configure()``: with genai-prices wanted but not importable,
        say (INFO) that models without a ``prices=`` entry are unpriced, and what prices them."""
        if not self._use_library or self._said_missing:
            return
        if self._library is not False and _library_available():
            return
        self._said_missing = True
        logger.info(
            "agentrel: genai-prices is not installed: tokens of models without a "
            "configure(prices=...) entry are counted in agentrel.cost.unpriced_tokens "
            "(pip install '%s[cost]' prices them)",
            DIST,
        )

    def after_fork(self) -> None:
        self._lock = threading.Lock()  # a thread of the parent may have held it at the fork

    # -- prices ----------------------------------------------------------------------------
    def _load_library(self) -> Any:
        if self._library is None:
            try:
                import genai_prices
            except Exception:  # ImportError, or a broken install: no price table
                self._library = False
                if not self._overrides:
                    self.enabled = False
            else:
                self._library = genai_prices
        return self._library

    def _from_library(self, model: str) -> Rates | None:
        lib = self._load_library() if self._use_library else False
        if not lib:
            return None
        try:
            inp = _per_mtok(lib, model, input_tokens=1000)
            out = _per_mtok(lib, model, output_tokens=1000)
            read = _per_mtok(lib, model, input_tokens=1000, cache_read_tokens=1000)
            write = _per_mtok(lib, model, input_tokens=1000, cache_write_tokens=1000)
        except LookupError:
            return None
        return Rates(inp, out, read, write)

    def rates(self, model: str | None) -> Rates | None:
        """The prices of ``model`` (``None``: no known price, the tokens are unpriced)."""
        try:
            return self._resolved[model]
        except KeyError:
            pass
        found = None
        if model is not None:
            found = self._overrides.get(model)
            if found is None:
                try:
                    found = self._from_library(model)
                except Exception as exc:  # a price table that cannot answer prices nothing
                    telemetry_error("cost.prices", exc)
        if len(self._resolved) < _RESOLVED_MAX:
            self._resolved[model] = found
        return found

    # -- tokens -> dollars -----------------------------------------------------------------
    def cost(
        self, tokens: Tokens | None
    ) -> tuple[dict[str | None, Decimal], dict[str | None, int]]:
        """(exact cost by model, unpriced tokens by model) of one token dictionary."""
        by_model: dict[str | None, list[int]] = {}
        for (model, ttype), n in (tokens or {}).items():
            if not n:
                continue
            row = by_model.get(model)
            if row is None:
                row = by_model[model] = [0, 0, 0, 0]
            if ttype == cat.INPUT:
                row[0] += n
            elif ttype == cat.OUTPUT:
                row[1] += n
            elif ttype == CACHE_READ:
                row[2] += n
            elif ttype == CACHE_WRITE:
                row[3] += n
        dollars: dict[str | None, Decimal] = {}
        unpriced: dict[str | None, int] = {}
        for model, (i, o, r, w) in by_model.items():
            price = self.rates(model)
            if price is None:
                if i or o:
                    unpriced[model] = i + o
                continue
            r, w = min(r, i), min(w, max(i - r, 0))  # parts of the input, never more
            dollars[model] = (
                (i - r - w) * price.input
                + o * price.output
                + r * price.cache_read
                + w * price.cache_write
            ) / _MTOK
        return dollars, unpriced

    def usd(self, useful: Tokens | None, wasted: Tokens | None) -> tuple[Decimal, Decimal] | None:
        """(all, wasted) dollars of a scope's tokens; ``None`` when pricing is off."""
        if not self.enabled:
            return None
        if not useful and not wasted:  # a run with no tokens: nothing to price
            return _ZERO, _ZERO
        u, _ = self.cost(useful)
        w, _ = self.cost(wasted)
        spent_wasted = sum(w.values(), _ZERO)
        return sum(u.values(), _ZERO) + spent_wasted, spent_wasted

    def priced(
        self, agent: str | None, cohort: str | None, useful: Tokens | None, wasted: Tokens | None
    ) -> Priced:
        """What ``agentrel.cost`` and ``agentrel.cost.unpriced_tokens`` get for tokens that
        just got their disposition, and their exact (all, wasted) dollars."""
        sums = {cat.USEFUL: _ZERO, cat.WASTED: _ZERO}
        spent: list[tuple[float, dict[str, str]]] = []
        unpriced_out: list[tuple[int, dict[str, str]]] = []
        for disposition, tokens in ((cat.USEFUL, useful), (cat.WASTED, wasted)):
            if not tokens:
                continue
            dollars, unpriced = self.cost(tokens)
            sums[disposition] = sum(dollars.values(), _ZERO)
            for model, amount in dollars.items():
                key = (agent, cohort, model, disposition)
                attrs = self._attrs.get(key)
                if attrs is None:
                    attrs = {cat.DISPOSITION: disposition}
                    if agent is not None:
                        attrs[cat.AGENT] = agent
                    if cohort is not None:
                        attrs[cat.COHORT] = cohort
                    if model is not None:
                        attrs[cat.REQUEST_MODEL] = model
                    if len(self._attrs) < _RESOLVED_MAX:
                        self._attrs[key] = attrs
                spent.append((float(amount), attrs))
            for model, n in unpriced.items():
                uattrs = self._unpriced_attrs.get(model)
                if uattrs is None:
                    uattrs = {cat.REQUEST_MODEL: model} if model is not None else {}
                    if len(self._unpriced_attrs) < _RESOLVED_MAX:
                        self._unpriced_attrs[model] = uattrs
                unpriced_out.append((n, uattrs))
        return Priced(spent, unpriced_out, (sums[cat.USEFUL] + sums[cat.WASTED], sums[cat.WASTED]))


def _per_mtok(lib: Any, model: str, **usage: int) -> Decimal:
    """The price genai-prices computes for 1000 tokens, per million (1000 stays inside the
    first tier of tiered prices)."""
    calc = lib.calc_price(lib.Usage(**usage), model)
    return Decimal(calc.total_price) * 1000


#: The process's pricing state (configured by ``configure(prices=...)``).
PRICING = Pricing()
os.register_at_fork(after_in_child=PRICING.after_fork)


# The module-level API (configuration, tests, benchmarks), over ``PRICING``.
def set_prices(use_library: bool, table: Mapping[str, Rates]) -> None:
    """Apply a validated price configuration (``configure``) and forget resolved prices."""
    PRICING.set_prices(use_library, table)


def reset() -> None:
    """Back to the defaults (``testing.reset()``)."""
    PRICING.reset()


def rates(model: str | None) -> Rates | None:
    """The prices of ``model`` (``None``: no known price)."""
    return PRICING.rates(model)


def cost(tokens: Tokens | None) -> tuple[dict[str | None, Decimal], dict[str | None, int]]:
    """(exact cost by model, unpriced tokens by model) of one token dictionary."""
    return PRICING.cost(tokens)


def amounts(
    agent: str | None, cohort: str | None, useful: Tokens | None, wasted: Tokens | None
) -> Amounts:
    """(dollars, attributes) and (unpriced tokens, attributes) of tokens that just got their
    disposition (see ``Pricing.priced``)."""
    p = PRICING.priced(agent, cohort, useful, wasted)
    return p.spent, p.unpriced
