"""The Ray engine of :func:`foolkit.evaluation.sweep.sweep`: one Ray Core task per sweep task.

Ray does the scheduling (resources per task, placement on nodes, retries when a worker dies);
foolkit only submits the tasks and waits for them. Each task writes its own store under the
sweep's folder, so on several machines that folder must be shared (a network file system is
fine: each store is written by one process only; the merge at the end runs on the driver).

A local instance (no ``address``) binds every service to 127.0.0.1: nothing of it is
reachable from the network, and no dashboard is started.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator
from ..errors import InputError, RayMissing

INSTALL_HINT = "the Ray engine needs Ray: pip install 'foolkit[ray]'"




def import_ray():
    """``ray``, or a one-line :class:`RayMissing` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayMissing(INSTALL_HINT) from None
    return ray


def local_init_kwargs(num_cpus: int | None) -> dict:
    """``ray.init`` arguments for a private local instance on the loopback address only."""
    return {"num_cpus": num_cpus, "include_dashboard": False, "_node_ip_address": "127.0.0.1",
            "log_to_driver": False, "configure_logging": False}


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """While open, Ray instances started from this process bind every service to 127.0.0.1.

    ``_node_ip_address="127.0.0.1"`` alone is not enough: Ray 2.60 still binds the GCS, the
    raylet and the workers to ``::`` and its runtime-env agent to the network interface. With
    its "no cluster" switch off (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, read when ray is
    imported, so set both in the environment for the processes it spawns and in its constants
    for this one) it binds them all to the loopback address. Both are restored on exit, so a
    later connection to a real cluster is not affected.
    """
    ray = import_ray()
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    key = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    old_env, old_const = os.environ.get(key), getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[key] = "0"
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if old_env is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old_env
        if constants is not None:
            constants.ENABLE_RAY_CLUSTER = old_const


def _remote_task(task, spec, out: str, device: str, threads: int) -> dict:
    from .sweep import run_task
    return run_task(task, spec, out, device=device, threads=threads)


def _cause(exc: BaseException) -> BaseException:
    """The user's exception inside a ``RayTaskError``, as one line (Ray appends a traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return cause
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
    return RuntimeError(f"a sweep task failed on Ray: {text}")


def run_on_ray(tasks: list, spec, out: str, *, address: str | None = None, num_cpus: int | None = None,
               cpus_per_task: int = 1, gpus_per_task: float = 0, max_retries: int = 3, device: str = "cpu",
               on_done: Callable[[dict], None] | None = None, fn: Callable[..., dict] | None = None) -> list[dict]:
    """Run ``tasks`` (:class:`~foolkit.evaluation.sweep_spec.Task`) as Ray tasks; returns their summaries.

    Args:
        address: a cluster to join; None starts a local instance (127.0.0.1, ``num_cpus`` CPUs,
            no dashboard). Ray is shut down at the end when this call connected it.
        cpus_per_task, gpus_per_task: resources Ray reserves for each task (the task also uses
            ``cpus_per_task`` torch threads).
        max_retries: re-runs of a task whose worker process died (a retried task resumes its
            store, so finished batches are not computed twice). Exceptions raised by the task
            (bad input) are not retried.
        on_done: called with each task's summary as it finishes.
        fn: what each Ray task runs, ``fn(task, spec, out, device, threads) -> dict`` (a module-level
            function, pickled to the workers); default: one sweep task (``sweep.run_task``).
    """
    ray = import_ray()
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InputError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    with contextlib.ExitStack() as stack:
        connected = False
        if not ray.is_initialized():
            if address is None:
                stack.enter_context(loopback_only())
                ray.init(**local_init_kwargs(num_cpus))
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
            connected = True
        return _run(ray, connected, tasks, spec, out, cpus_per_task=cpus_per_task, gpus_per_task=gpus_per_task,
                    max_retries=max_retries, device=device, on_done=on_done, fn=fn or _remote_task)


def _run(ray, connected, tasks, spec, out, *, cpus_per_task, gpus_per_task, max_retries, device, on_done,
         fn=_remote_task):
    try:
        remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=max_retries,
                            retry_exceptions=False)(fn)
        spec_ref = ray.put(spec)
        pending = [remote.remote(t, spec_ref, out, device, cpus_per_task) for t in tasks]
        summaries = []
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        summary = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        raise _cause(exc) from None
                    summaries.append(summary)
                    if on_done is not None:
                        on_done(summary)
        except BaseException:
            for ref in pending:  # Ctrl-C or a failed task: stop the rest (their stores keep what they finished)
                ray.cancel(ref, force=True)
            raise
        return summaries
    finally:
        if connected:
            ray.shutdown()


__all__ = ["INSTALL_HINT", "RayMissing", "import_ray", "local_init_kwargs", "loopback_only", "run_on_ray"]
