"""Run replications and policy comparisons in parallel: local processes or a Dask cluster.

A *task* is one replication of a scenario under one or more policies (the policies of a task share
its calls: common random numbers). Tasks are independent and carry everything they need (the
scenario, the replication number, the policies), so the results are identical whichever executor
ran them: in this process, in local processes (:class:`concurrent.futures.ProcessPoolExecutor`, the
default), or on a Dask cluster (``--dask SCHEDULER_ADDRESS``; the optional extra
``pip install 'dispatch[dask]'``). Results come back in task order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from dispatch.errors import DispatchError
from dispatch.sim.records import SimResult
from dispatch.sim.runner import check_run_limits, run_scenario
from dispatch.sim.scenario import Scenario

__all__ = ["Task", "run_task", "run_tasks", "run_replications"]


@dataclass(frozen=True)
class Task:
    """One replication of a scenario under some policies.

    Parameters
    ----------
    scenario : Scenario
    replication : int
    policies : tuple of str
    monitor : bool
        Keep event records.
    net_factory : callable, optional
        A picklable function returning the network (tests use a fake); default: load the
        scenario's map.
    move_up : str, optional
        Move-up policy (:mod:`dispatch.sim.moveup`); default ``none``.
    """

    scenario: Scenario
    replication: int
    policies: tuple[str, ...]
    monitor: bool = False
    net_factory: Callable[[], Any] | None = None
    move_up: str | None = None


def run_task(task: Task, progress: Callable[[int], None] | None = None) -> list[SimResult]:
    """Run one task (in whatever process this is); one result per policy, in policy order."""
    net = task.net_factory() if task.net_factory is not None else None
    return run_scenario(
        task.scenario,
        net=net,
        replication=task.replication,
        policies=task.policies,
        monitor=task.monitor,
        progress=progress,
        move_up=task.move_up,
    )


def run_tasks(
    tasks: Sequence[Task],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    on_done: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[list[SimResult]]:
    """Run tasks and return their results in task order.

    Parameters
    ----------
    tasks : sequence of Task
    workers : int, optional
        Local processes (default: the number of CPUs, at most the number of tasks). 1 runs the
        tasks in this process.
    dask_address : str, optional
        Scheduler address of a running Dask cluster (``tcp://host:8786``); overrides ``workers``.
    on_done : callable, optional
        Called with 1 each time a task finishes (for a progress bar over tasks).
    progress : callable, optional
        Per-call progress of a task run in this process (only when tasks run here).
    """
    if dask_address is not None:
        return _run_dask(tasks, dask_address, on_done)
    if workers is not None and workers < 1:
        raise DispatchError(f"workers={workers!r} must be >= 1")
    n = min(workers or os.cpu_count() or 1, len(tasks))
    if n <= 1:
        out = []
        for t in tasks:
            out.append(run_task(t, progress))
            if on_done is not None:
                on_done(1)
        return out
    results: list[list[SimResult] | None] = [None] * len(tasks)
    pool = ProcessPoolExecutor(max_workers=n)
    try:
        futures = {pool.submit(run_task, t): i for i, t in enumerate(tasks)}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            if on_done is not None:
                on_done(1)
    except BaseException:  # an error, Ctrl-C or SIGTERM: do not wait for the running tasks
        _stop(pool)
        raise
    pool.shutdown()
    return [r for r in results if r is not None]


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and end the worker processes now."""
    processes = getattr(pool, "_processes", None) or {}  # CPython's executor keeps them here
    for proc in list(processes.values()):
        proc.kill()  # SIGKILL: a worker may have inherited a SIGTERM handler; it writes nothing
    pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(
    tasks: Sequence[Task], address: str, on_done: Callable[[int], None] | None
) -> list[list[SimResult]]:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise DispatchError(
            "--dask needs the optional extra: pip install 'dispatch[dask]' (dask[distributed])"
        ) from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise DispatchError(f"--dask {address!r}: cannot reach the scheduler ({exc})") from None
    try:
        futures = client.map(run_task, list(tasks), pure=False)
        results: list[list[SimResult]] = []
        for fut in futures:  # in task order (the cluster runs them in parallel meanwhile)
            results.append(fut.result())
            if on_done is not None:
                on_done(1)
        return results
    finally:
        client.close()  # type: ignore[no-untyped-call]


def run_replications(
    scenario: Scenario,
    *,
    policies: Sequence[str],
    replications: int | None = None,
    workers: int | None = None,
    dask_address: str | None = None,
    net_factory: Callable[[], Any] | None = None,
    on_done: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
    move_up: str | None = None,
) -> dict[str, list[SimResult]]:
    """Run every replication of a scenario under every policy; results by policy, in replication order.

    Replication ``r`` uses the random streams of (``scenario.seed``, ``r``) whatever the executor,
    and every policy of a replication simulates the same calls.
    """
    reps = scenario.replications if replications is None else replications
    check_run_limits(scenario, reps)
    tasks = [Task(scenario, r, tuple(policies), False, net_factory, move_up) for r in range(reps)]
    out = run_tasks(
        tasks, workers=workers, dask_address=dask_address, on_done=on_done, progress=progress
    )
    by_policy: dict[str, list[SimResult]] = {p: [] for p in policies}
    for task_results in out:
        for res in task_results:
            by_policy[res.policy].append(res)
    return by_policy
