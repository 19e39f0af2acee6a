"""What self-healing costs in dollars (issue 13): prices, ``agentrel.cost``, unpriced tokens.

Prices come from ``configure(prices={model: (input, output, cached input)})`` (US dollars per
million tokens) and, for every other model, from the optional ``genai-prices`` package
(``agentrel[cost]``), imported lazily on the first lookup. Its bundled price table is used as
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
import threading
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from . import _catalogue as cat
from ._guard import telemetry_error
from ._tokens import CACHE_READ, CACHE_WRITE, SUBSETS, Tokens

__all__ = ["CACHE_READ", "CACHE_WRITE", "SUBSETS", "Rates", "amounts", "cost", "rates"]

_MTOK = Decimal(1_000_000)
_ZERO = Decimal(0)


class Rates(NamedTuple):
    """US dollars per million tokens."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal


_lock = threading.Lock()
_overrides: dict[str, Rates] = {}
_use_library = True
_library: Any = None  # the genai_prices module once imported; False when it is missing
_resolved: dict[str | None, Rates | None] = {}
_RESOLVED_MAX = 4096  # model names come from code and provider answers: bounded anyway
_attr_cache: dict[tuple[str | None, str | None, str | None, str], dict[str, str]] = {}
_unpriced_attrs: dict[str | None, dict[str, str]] = {}


def _library_available() -> bool:
    try:
        return importlib.util.find_spec("genai_prices") is not None
    except (ImportError, ValueError):  # e.g. sys.modules["genai_prices"] = None
        return False


#: Whether any price source exists: the hooks in the core test this first (one global read).
ENABLED = _library_available()


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


def set_prices(use_library: bool, table: Mapping[str, Rates]) -> None:
    """Apply a validated price configuration (``configure``) and forget resolved prices."""
    global _use_library, ENABLED
    with _lock:
        _use_library = use_library
        _overrides.clear()
        _overrides.update(table)
        _resolved.clear()
        ENABLED = bool(_overrides) or (
            use_library and _library is not False and _library_available()
        )
    if ENABLED and use_library:
        _load_library()  # import now (~0.3 s), not on the first run's end


def reset() -> None:
    """Back to the defaults (``testing.reset()``)."""
    global _library
    _library = None
    set_prices(True, {})


# --- prices ------------------------------------------------------------------------------------
def _load_library() -> Any:
    global _library, ENABLED
    if _library is None:
        try:
            import genai_prices
        except Exception:  # ImportError, or a broken install: no price table
            _library = False
            if not _overrides:
                ENABLED = False
        else:
            _library = genai_prices
    return _library


def _per_mtok(lib: Any, model: str, **usage: int) -> Decimal:
    """The price genai-prices computes for 1000 tokens, per million (1000 stays inside the
    first tier of tiered prices)."""
    calc = lib.calc_price(lib.Usage(**usage), model)
    return Decimal(calc.total_price) * 1000


def _from_library(model: str) -> Rates | None:
    lib = _load_library() if _use_library else False
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


def rates(model: str | None) -> Rates | None:
    """The prices of ``model`` (``None``: no known price, the tokens are unpriced)."""
    try:
        return _resolved[model]
    except KeyError:
        pass
    found = None
    if model is not None:
        found = _overrides.get(model)
        if found is None:
            try:
                found = _from_library(model)
            except Exception as exc:  # a price table that cannot answer prices nothing
                telemetry_error("cost.prices", exc)
    if len(_resolved) < _RESOLVED_MAX:
        _resolved[model] = found
    return found


# --- tokens -> dollars -----------------------------------------------------------------------
def cost(tokens: Tokens | None) -> tuple[dict[str | None, Decimal], dict[str | None, int]]:
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
        price = rates(model)
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


def usd(useful: Tokens | None, wasted: Tokens | None) -> tuple[Decimal, Decimal] | None:
    """(all, wasted) dollars of a scope's tokens; ``None`` when pricing is off."""
    if not ENABLED:
        return None
    u, _ = cost(useful)
    w, _ = cost(wasted)
    spent_wasted = sum(w.values(), _ZERO)
    return sum(u.values(), _ZERO) + spent_wasted, spent_wasted


def run_cost(run: Any, wasted_only: bool) -> float | None:
    """``Run.cost_usd`` / ``Run.wasted_cost_usd``."""
    try:
        with run._lock:
            useful, wasted = dict(run._useful), dict(run._wasted)
        figures = usd(useful, wasted)
    except Exception as exc:
        telemetry_error("cost.run", exc)
        return None
    if figures is None:
        return None
    return float(figures[1] if wasted_only else figures[0])


#: (useful, wasted, (all, wasted) dollars) of the last ``amounts``: the run's span reuses them
#: (matched by identity, so concurrent runs can only miss it, never read another's figures).
_last: tuple[Any, Any, tuple[Decimal, Decimal]] | None = None


def span_attrs(attrs: dict[str, Any], useful: Tokens, wasted: Tokens) -> None:
    """``agentrel.run.cost_usd`` / ``agentrel.run.wasted_cost_usd`` on a finished run's span."""
    try:
        last = _last
        if last is not None and last[0] is useful and last[1] is wasted:
            figures: tuple[Decimal, Decimal] | None = last[2]  # computed by amounts()
        else:
            figures = usd(useful, wasted)
        if figures is not None:
            attrs["agentrel.run.cost_usd"] = float(figures[0])
            attrs["agentrel.run.wasted_cost_usd"] = float(figures[1])
    except Exception as exc:
        telemetry_error("cost.span", exc)


Amounts = tuple[list[tuple[float, dict[str, str]]], list[tuple[int, dict[str, str]]]]


def amounts(
    agent: str | None, cohort: str | None, useful: Tokens | None, wasted: Tokens | None
) -> Amounts:
    """What ``agentrel.cost`` and ``agentrel.cost.unpriced_tokens`` get for tokens that just got
    their disposition: (dollars, attributes) and (unpriced tokens, attributes); ``_record``
    records them next to ``agentrel.tokens``."""
    global _last
    sums = {cat.USEFUL: _ZERO, cat.WASTED: _ZERO}
    spent: list[tuple[float, dict[str, str]]] = []
    unpriced_out: list[tuple[int, dict[str, str]]] = []
    for disposition, tokens in ((cat.USEFUL, useful), (cat.WASTED, wasted)):
        if not tokens:
            continue
        dollars, unpriced = cost(tokens)
        sums[disposition] = sum(dollars.values(), _ZERO)
        for model, amount in dollars.items():
            key = (agent, cohort, model, disposition)
            attrs = _attr_cache.get(key)
            if attrs is None:
                attrs = {cat.DISPOSITION: disposition}
                if agent is not None:
                    attrs[cat.AGENT] = agent
                if cohort is not None:
                    attrs[cat.COHORT] = cohort
                if model is not None:
                    attrs[cat.REQUEST_MODEL] = model
                if len(_attr_cache) < _RESOLVED_MAX:
                    _attr_cache[key] = attrs
            spent.append((float(amount), attrs))
        for model, n in unpriced.items():
            uattrs = _unpriced_attrs.get(model)
            if uattrs is None:
                uattrs = {cat.REQUEST_MODEL: model} if model is not None else {}
                if len(_unpriced_attrs) < _RESOLVED_MAX:
                    _unpriced_attrs[model] = uattrs
            unpriced_out.append((n, uattrs))
    _last = (useful, wasted, (sums[cat.USEFUL] + sums[cat.WASTED], sums[cat.WASTED]))
    return spent, unpriced_out


def add_cache_tokens(call: Any, cache_read: int | None, cache_write: int | None) -> None:
    """Carry an LLM call's cached input counts (parts of its input tokens, as the adapters
    report them) into the call's attempt in progress, beside its input tokens."""
    if not ENABLED or not (cache_read or cache_write):
        return
    try:
        model = call.spec.model
        d = call._cur
        if d is None:
            d = call._cur = {}
        for ttype, n in ((CACHE_READ, cache_read), (CACHE_WRITE, cache_write)):
            if n:
                d[(model, ttype)] = d.get((model, ttype), 0) + n
    except Exception as exc:
        telemetry_error("cost.cache_tokens", exc)
