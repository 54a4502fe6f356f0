"""Statistics: hand-computed groups, unserved calls as misses, CIs and paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatch.sim.records import SimResult
from dispatch.sim.runner import run_scenario
from dispatch.sim.stats import (
    across_replications,
    mean_ci,
    paired_differences,
    pooled_summary,
    response_stats,
    summarize,
)
from tests._sim_fake import FakeNet
from tests.sim.test_simulation import tiny_scenario


def test_response_stats_by_hand() -> None:
    resp = np.array([100.0, 200.0, 300.0, 400.0, np.nan])
    target = np.full(5, 250.0)
    served = np.array([True, True, True, True, False])
    wait = np.array([0.0, 0.0, 50.0, 150.0, np.nan])
    s = response_stats(resp, target, served, wait)
    assert (s["calls"], s["served"], s["unserved"]) == (5, 4, 1)
    assert s["response_s"]["mean"] == 250.0 and s["response_s"]["median"] == 250.0
    assert s["response_s"]["p90"] == pytest.approx(370.0)
    assert s["within_target"] == pytest.approx(2 / 5)  # the unserved call counts as a miss
    assert s["wait_s"]["mean"] == 50.0 and s["waited"] == 0.5


def test_empty_group_has_no_values() -> None:
    s = response_stats(np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool), np.zeros(0))
    assert s["calls"] == 0 and s["response_s"]["mean"] is None and s["within_target"] is None


def test_mean_ci_t_interval() -> None:
    ci = mean_ci([1.0, 2.0, 3.0, 4.0])
    # t(0.975, 3) = 3.182446; sd = 1.290994; half width = 3.182446 * 1.290994 / 2
    assert ci["mean"] == 2.5
    assert ci["half_width"] == pytest.approx(2.054, abs=1e-3)
    assert mean_ci([5.0])["half_width"] is None
    assert mean_ci([])["mean"] is None


def _runs(reps: int) -> dict[str, list[SimResult]]:
    sc = tiny_scenario(
        simulation={"horizon_h": 12.0, "warmup_h": 1.0, "seed": 4},
        units=[{"id": "U", "vehicle": "ambulance", "station": "S", "count": 2}],
    )
    out: dict[str, list[SimResult]] = {"fastest": [], "nearest_straight_line": []}
    for r in range(reps):
        for res in run_scenario(sc, net=FakeNet(), replication=r, policies=list(out)):
            out[res.policy].append(res)
    return out


def test_summary_groups_add_up_and_skip_warmup() -> None:
    res = _runs(1)["fastest"][0]
    s = summarize(res)
    counted = int(np.count_nonzero(res.calls["in_stats"]))
    assert s["calls"] == counted < res.n_calls == s["calls_generated_incl_warmup"]
    assert s["served"] + s["unserved"] == s["calls"]
    for by in ("by_priority", "by_type", "by_service", "by_area"):
        assert sum(g["calls"] for g in s[by].values()) == s["calls"]
    assert set(s["by_priority"]) == {"1", "2"}
    assert 0 <= s["units"]["utilisation_mean"] <= 1
    assert "wall" not in str(s) and "elapsed" not in str(s)


def test_replications_and_paired_differences() -> None:
    runs = _runs(4)
    pooled = pooled_summary(runs["fastest"])
    assert pooled["replications"] == 4
    assert pooled["calls"] == sum(summarize(r)["calls"] for r in runs["fastest"])
    ci = across_replications(runs["fastest"])["response_mean_s"]
    assert ci["n"] == 4 and ci["low"] <= ci["mean"] <= ci["high"]
    diffs = paired_differences(runs, reference="fastest")
    d = diffs["nearest_straight_line"]["response_mean_s"]
    per = [
        summarize(b)["response_s"]["mean"] - summarize(a)["response_s"]["mean"]
        for a, b in zip(runs["fastest"], runs["nearest_straight_line"], strict=True)
    ]
    assert d["difference"]["mean"] == pytest.approx(np.mean(per), abs=1e-3)
    assert d["difference"]["n"] == 4
    with pytest.raises(ValueError, match="reference='optimal_batch'"):
        paired_differences(runs, reference="optimal_batch")


def test_identical_policies_have_zero_difference() -> None:
    runs = _runs(2)
    same = {"fastest": runs["fastest"], "copy": runs["fastest"]}
    d = paired_differences(same)["copy"]["response_mean_s"]["difference"]
    assert d["mean"] == 0.0 and d["half_width"] == 0.0
    assert not math.isnan(d["low"])
