"""Planning: coverage, station siting, move-up decisions and coverage-hole warnings.

Every model is built from a cost matrix (travel times in seconds from the routing core, never straight
lines) and kept apart from file reading (:mod:`dispatch.plan.io`):

- :mod:`~dispatch.plan.demand`: demand points (a grid over the roads, a CSV of historical calls, a
  scenario's call model) and their road travel-time matrices;
- :mod:`~dispatch.plan.coverage`: share of demand reached within a target from where units are now;
- :mod:`~dispatch.plan.siting`: MCLP, p-median, LSCP and MEXCLP solved with OR-Tools;
- :mod:`~dispatch.plan.moveup`: DMEXCLP and compliance-table move-up decisions (pure functions);
- :mod:`~dispatch.plan.warning`: the coverage-hole warning for a dispatch decision.
"""

from __future__ import annotations

from dispatch.errors import DispatchError


class PlanError(DispatchError):
    """Bad planning input: p larger than the candidates, an empty demand, a bad target."""


__all__ = ["PlanError"]
