"""Turning tokens into dollars: the default price table, a workspace's overrides, the lookup.

Prices are US dollars per million tokens. A model is priced by its own name, else by the longest
priced name it starts with, so a dated snapshot (``gpt-4o-mini-2024-07-18``) costs what its
family (``gpt-4o-mini``) costs. A request logged with a price keeps that price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from promptrun.server.store.base import ModelPrice, ModelUsage

__all__ = [
    "DEFAULT_PRICES",
    "PriceTable",
    "model_costs",
    "request_cost",
    "token_prices",
    "total_cost",
]

# List prices at the time of writing; a workspace overrides any of them on the prices page.
DEFAULT_PRICES: Mapping[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o4-mini": (1.10, 4.40),
    "claude-opus-4-1": (15.00, 75.00),
    "claude-sonnet-4-6": (3.00, 15.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
}


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One line of the prices page: the price in force and whether the workspace set it."""

    model: str
    input_per_million: float
    output_per_million: float
    custom: bool
    default: tuple[float, float] | None


class PriceTable:
    """The defaults with a workspace's own prices laid over them."""

    def __init__(self, overrides: Iterable[ModelPrice] = ()) -> None:
        self._custom = {p.model: (p.input_per_million, p.output_per_million) for p in overrides}
        self._prices = {**DEFAULT_PRICES, **self._custom}
        # Longest first, so "gpt-4o-mini-…" finds gpt-4o-mini before gpt-4o.
        self._by_length = sorted(self._prices, key=len, reverse=True)

    def price_of(self, model: str) -> tuple[float, float] | None:
        """``(input, output)`` per million tokens for ``model``, or None when unpriced."""
        exact = self._prices.get(model)
        if exact is not None:
            return exact
        for name in self._by_length:
            if model.startswith(name) and model[len(name) : len(name) + 1] in ("-", "@", ":"):
                return self._prices[name]
        return None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float | None:
        """What those tokens of ``model`` cost, or None when the model has no price."""
        price = self.price_of(model)
        if price is None:
            return None
        return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000

    def rows(self) -> list[PriceRow]:
        """Every priced model, by name, for the prices page."""
        return [
            PriceRow(
                model=model,
                input_per_million=price[0],
                output_per_million=price[1],
                custom=model in self._custom,
                default=DEFAULT_PRICES.get(model),
            )
            for model, price in sorted(self._prices.items())
        ]


def request_cost(table: PriceTable, item: Mapping[str, object]) -> tuple[float | None, bool]:
    """A logged request's cost and whether it was estimated from the price table.

    The price the log carried wins; without one, the tokens are priced by model.
    """
    logged = item.get("price")
    if isinstance(logged, int | float) and logged > 0:
        return float(logged), False
    tokens_in = item.get("input_tokens")
    tokens_out = item.get("output_tokens")
    model = item.get("model")
    if not isinstance(model, str) or not isinstance(tokens_in, int):
        return None, False
    if not isinstance(tokens_out, int):
        return None, False
    return table.cost(model, tokens_in, tokens_out), True


def model_costs(
    usage: Iterable[ModelUsage], prices: PriceTable
) -> tuple[list[tuple[str, float]], list[str]]:
    """Cost per model (logged prices plus priced tokens), and the models the table cannot
    price that had requests logged without a price."""
    costs, unpriced = [], []
    for row in usage:
        extra = prices.cost(row.model, row.unpriced_input_tokens, row.unpriced_output_tokens)
        if extra is None:
            extra = 0.0
            if row.unpriced_input_tokens or row.unpriced_output_tokens:
                unpriced.append(row.model or "(no model)")
        costs.append((row.model or "(no model)", row.logged_price + extra))
    return costs, unpriced


def total_cost(usage: Iterable[ModelUsage], prices: PriceTable) -> float:
    return sum(cost for _, cost in model_costs(usage, prices)[0])


def token_prices(table: PriceTable, models: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Per model, its price in force (per million tokens in and out), for sorting by cost."""
    return {model: price for model in models if (price := table.price_of(model)) is not None}
