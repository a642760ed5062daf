"""Randomised RTL-vs-golden regression: one case function, two executors, one summary.

A case is a plain dict (:meth:`Settings.tasks`), so it pickles to a local worker process or
to a Dask worker on another machine alike. :func:`run_case` runs one in whatever process it
lands in; :func:`run_cases` hands cases to an executor (``local``: a process pool on this
machine; ``dask``: a ``distributed`` cluster, a ``LocalCluster`` when no scheduler address is
given) and returns one row per case, sorted by seed, whatever order they finished in;
:func:`summary` turns rows into the table and reproducer commands. The executor changes
where cases run, never what the summary says.

Builds: a worker builds the simulator model of a core shape the first time a case of that
shape lands on it, into its own ``$DELAYHW_SIM_CACHE`` (default ``~/.cache/delayhw/sim``:
shared by the workers of one machine, lock-guarded), and reuses it for every later case of
that shape (docs/scale.md says what a cluster-wide cache would need).

Lost cases: a case whose worker process dies is retried on another worker by Dask (until
it has killed more than ``distributed.scheduler.allowed-failures`` workers); after that, or
when a local pool breaks, the case becomes an ``ERROR`` row naming the cause. No case is
ever dropped from the summary.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from delayhw.errors import DelayhwError
from delayhw.netgen import NetParams, random_case

EXECUTORS = ("local", "dask")
#: lanes of a case when ``--lanes`` is not given: cycled by shape
LANES_BY_SHAPE = (1, 2, 4)
STATUS_OK = "ok"

Case = dict[str, Any]
Row = dict[str, Any]


@dataclass(frozen=True)
class Settings:
    """What every case of one regression shares (the ``delayhw regress`` options)."""

    sim: str = "verilator"
    scheme: str = "fifo"
    shapes: int = 4
    lanes: int | None = None          #: None: 1, 2 or 4 by shape
    batch: int = 3
    steps: int = 16
    max_size: int = 8
    d_max: int = 12
    ready_prob: float = 1.0
    #: a board name: each case runs on the gate-level netlist of that board's top
    #: (:mod:`delayhw.sim.netlist`, synthesised per network) instead of the RTL
    netlist: str | None = None
    baud: int | None = None           #: with ``netlist``: the build's baud rate
    timeout: float = 600.0            #: with ``netlist``: seconds to wait for a reply

    def params(self) -> NetParams:
        return NetParams(max_inputs=self.max_size, max_size=self.max_size, max_layers=3,
                         d_max=(0, self.d_max))

    def tasks(self, start: int, seeds: int) -> list[Case]:
        """The cases of seeds ``start .. start + seeds - 1``: case SEED takes its structure
        from ``SEED % shapes`` (cases of one shape share a build), its contents and inputs
        from SEED."""
        params = self.params().as_dict()
        return [{"seed": s, "shape_seed": s % self.shapes, "params": params, "sim": self.sim,
                 "scheme": self.scheme, "batch": self.batch, "steps": self.steps,
                 "lanes": self.lanes or LANES_BY_SHAPE[(s % self.shapes) % len(LANES_BY_SHAPE)],
                 "ready_prob": self.ready_prob, "netlist": self.netlist, "baud": self.baud,
                 "timeout": self.timeout}
                for s in range(start, start + seeds)]

    def reproducer(self, row: Row) -> str:
        """The command that re-runs the case of ``row`` alone, on this machine."""
        target = (f"--netlist {self.netlist}" + (f" --baud {self.baud}" if self.baud else "")
                  if self.netlist else f"--ready-prob {self.ready_prob}")
        return (f"delayhw regress --start {row['seed']} --seeds 1 --shapes {self.shapes} "
                f"--sim {self.sim} --scheme {self.scheme} --lanes {row['lanes']} "
                f"--batch {self.batch} --steps {self.steps} --max-size {self.max_size} "
                f"--d-max {self.d_max} {target}")


def _model_and_spikes(task: Case):
    return random_case(task["seed"], NetParams(**task["params"]), batch=task["batch"],
                       steps=task["steps"], shape_seed=task["shape_seed"])


def describe(task: Case, model=None) -> Row:
    """The row of a case before it runs: seed, structure, lanes (cheap: no simulation)."""
    if model is None:
        model, _ = _model_and_spikes(task)
    return {"seed": task["seed"], "shape_seed": task["shape_seed"], "lanes": task["lanes"],
            "layers": "-".join([str(model.n_inputs)] + [
                f"{l.size}{'r' if l.recurrent else ''}" for l in model.layers]),
            "d_max": max(l.d_max for l in model.layers)}


def run_case(task: Case) -> Row:
    """Run one case in RTL and compare it with the golden model, in whatever process this
    is called. Never raises for a failing case: a mismatch or crash is a row with status
    ``MISMATCH`` or ``ERROR`` and the first difference or the error."""
    from . import cosim
    model, spikes = _model_and_spikes(task)
    row = describe(task, model)
    start = time.perf_counter()
    try:
        if task.get("netlist"):
            run = _run_netlist(task, model, spikes)
        else:
            run = cosim.run_rtl(model, spikes, sim=task["sim"], scheme=task["scheme"],
                                lanes=task["lanes"], ready_prob=task["ready_prob"],
                                seed=task["seed"])
        row["cycles"] = run.cycles
        difference = cosim.compare(model, spikes, run.result)
        row["difference"] = None if difference is None else str(difference)
        row["status"] = STATUS_OK if row["difference"] is None else "MISMATCH"
    except Exception as exc:      # a crash is a failed case, reported, not a traceback
        row["status"], row["difference"] = "ERROR", f"{type(exc).__name__}: {exc}"
    row["seconds"] = time.perf_counter() - start
    return row


def _run_netlist(task: Case, model, spikes):
    """A case on the netlist of its network's board top (synthesised once per network, the
    network in the bitstream's memory contents, as ``delayhw build`` makes it)."""
    from delayhw.boards.targets import get_board

    from . import netlist
    design = netlist.Design.of(model, get_board(task["netlist"]), scheme=task["scheme"],
                               lanes=task["lanes"], baud=task.get("baud"))
    return netlist.run(netlist.synthesise(design), spikes, sim=task["sim"],
                       timeout=task.get("timeout", 600.0))


def _lost(task: Case, exc: BaseException) -> Row:
    """The row of a case whose result never came back (its worker died or the pool broke)."""
    return dict(describe(task), status="ERROR", seconds=float("nan"),
                difference=f"case lost, not run to the end: {type(exc).__name__}: {exc}")


def _collect(pairs: Iterable[tuple[Case, Callable[[], Row]]],
             on_row: Callable[[Row], None] | None) -> list[Row]:
    rows = []
    for task, result in pairs:
        try:
            row = result()
        except (Exception, CancelledError) as exc:
            row = _lost(task, exc)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return sorted(rows, key=lambda r: r["seed"])


class _Stopped(BaseException):
    """SIGTERM in a local worker, raised so the case's cleanup (simulator, folders) runs."""


def _worker_init() -> None:
    """In each local worker: the first SIGTERM unwinds the running case (its ``finally``
    blocks stop its simulator and remove its folders, :func:`_guarded`); later ones are
    ignored so they cannot cut that cleanup short (the pool itself sends one more to the
    workers left once one exits). SIGINT (a terminal's Ctrl-C reaches the whole group) is
    the parent's to act on."""
    import signal

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Stopped()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _guarded(case, task: Case) -> Row:
    """``case(task)`` in a local worker; stopped (SIGTERM), the worker exits after cleanup."""
    try:
        return case(task)
    except _Stopped:
        from delayhw import children
        children.stop_all()
        os._exit(143)


def _run_local(tasks: list[Case], jobs: int, case, on_row) -> list[Row]:
    """The cases on ``jobs`` local processes. Left by an exception (SIGINT, SIGTERM in the
    parent), the workers are stopped with their simulators instead of finishing their cases."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
    try:
        futures = {pool.submit(_guarded, case, t): t for t in tasks}
        rows = _collect(((futures[f], f.result) for f in as_completed(futures)), on_row)
    except BaseException:
        workers = list((pool._processes or {}).values())
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(10)
            if worker.is_alive():      # its cleanup hangs: it ignores SIGTERM by now
                worker.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return rows


def dask_client(scheduler: str | None, workers: int):
    """A ``distributed.Client``: connected to ``scheduler`` (``tcp://HOST:PORT``), or to a new
    ``LocalCluster`` of ``workers`` single-threaded worker processes when it is None. The
    caller closes it (and its cluster: ``client.cluster``, None for a remote scheduler)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise DelayhwError("--executor dask: dask.distributed is not installed "
                           "(pip install 'delayhw[scale]')") from None
    if scheduler is None:
        import dask
        # one case in flight per worker thread (no prefetching: a case lasts seconds), so a
        # worker that dies takes only its own case with it
        with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")     # any free port
        return Client(cluster)
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, ValueError, TypeError) as exc:
        raise DelayhwError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler "
                           f"({type(exc).__name__}: {exc})") from None


def _run_dask(tasks: list[Case], scheduler: str | None, workers: int, case, on_row) -> list[Row]:
    from distributed import as_completed
    client = dask_client(scheduler, workers)
    try:
        run_id = uuid.uuid4().hex[:8]
        futures = {client.submit(case, t, pure=False, key=f"delayhw-case-{t['seed']}-{run_id}"): t
                   for t in tasks}
        return _collect(((futures[f], f.result) for f in as_completed(futures)), on_row)
    finally:
        cluster = client.cluster if scheduler is None else None
        client.close()
        if cluster is not None:
            cluster.close()


def run_cases(tasks: list[Case], *, executor: str = "local", jobs: int = 2,
              scheduler: str | None = None, on_row: Callable[[Row], None] | None = None,
              case: Callable[[Case], Row] = run_case) -> list[Row]:
    """Run every case on ``executor`` and return one row per case, sorted by seed.
    ``jobs``: local worker processes, or the size of the LocalCluster started when
    ``executor == "dask"`` and no ``scheduler`` address is given. ``on_row(row)`` is called
    in this process as each case finishes. ``case`` must be importable by the workers."""
    if executor not in EXECUTORS:
        raise DelayhwError(f"--executor: {executor!r} is not one of {EXECUTORS}")
    if scheduler is not None and executor != "dask":
        raise DelayhwError("--scheduler: only meaningful with --executor dask")
    if executor == "local":
        return _run_local(tasks, jobs, case, on_row)
    return _run_dask(tasks, scheduler, jobs, case, on_row)


def failed(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r["status"] != STATUS_OK]


def summary(rows: list[Row], settings: Settings) -> list:
    """What ``delayhw regress`` prints, as rich renderables: the table, the count of
    bit-exact networks, a reproducer command per failed case. A function of the rows'
    outcomes only (no timings), so it is identical for every executor."""
    from rich.table import Table
    what = f"netlist ({settings.netlist})" if settings.netlist else "RTL"
    table = Table(title=f"{what} vs golden: {settings.sim}, scheme {settings.scheme}, "
                        f"{settings.batch} samples x {settings.steps} steps per network")
    for col in ("seed", "shape", "layers", "d_max", "lanes", "cycles", "result"):
        table.add_column(col, justify="left" if col in ("layers", "result") else "right")
    for r in rows:
        table.add_row(str(r["seed"]), str(r["shape_seed"]), r["layers"], str(r["d_max"]),
                      str(r["lanes"]), str(r.get("cycles", "-")),
                      r["status"] if r["status"] == STATUS_OK else
                      f"{r['status']}: {r['difference']}")
    bad = failed(rows)
    out: list = [table, f"{len(rows) - len(bad)}/{len(rows)} networks bit-exact"]
    out += [f"reproduce seed {r['seed']}: {settings.reproducer(r)}" for r in bad]
    return out
