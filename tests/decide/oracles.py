"""Brute-force oracles' common part for the assignment tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any


def feasible_assignments(problem: Any) -> Iterator[list[tuple[int, int]]]:
    """Every assignment of units to the problem's demands that respects which unit each demand
    accepts (``problem.allowed``) and each demand's count: the ``(unit, demand)`` pairs, a unit
    in at most one (units left out are allowed). Exponential: for cases of a few units."""
    choices = [None, *range(problem.n_demands)]
    for combo in itertools.product(choices, repeat=problem.n_units):
        counts = [0] * problem.n_demands
        pairs = []
        for u, k in enumerate(combo):
            if k is None:
                continue
            if not problem.allowed[u, k]:
                break
            counts[k] += 1
            if counts[k] > problem.demands[k].count:
                break
            pairs.append((u, k))
        else:
            yield pairs
