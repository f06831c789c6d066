"""Route selection: the first ``[[routes]]`` entry that matches a message's
country, purpose and client gives the providers to try, in order. With
``weights`` the order is drawn at random, each provider's chance of going
first in proportion to its weight."""

from __future__ import annotations

import random
from collections.abc import Sequence

from config.settings import RouteSettings


class NoRoute(LookupError):
    """No route matches the message."""


class Router:
    def __init__(self, routes: Sequence[RouteSettings], rng: random.Random | None = None) -> None:
        self.routes = tuple(routes)
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security

    def providers_for(self, *, country: str, purpose: str, client: str) -> list[str]:
        for route in self.routes:
            if route.matches(country=country, purpose=purpose, client=client):
                if route.weights:
                    return self._weighted_order(dict(route.weights))
                return list(route.providers)
        raise NoRoute(f"no route for country={country} purpose={purpose}")

    def _weighted_order(self, weights: dict[str, int]) -> list[str]:
        order: list[str] = []
        while weights:
            names = list(weights)
            pick = self._rng.choices(names, weights=[weights[n] for n in names])[0]
            order.append(pick)
            del weights[pick]
        return order
