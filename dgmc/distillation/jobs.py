"""`dgmc run --jobs N`: the grid's independent jobs in N worker processes.

A job is a function with its arguments bound by keyword (`functools.partial`), run in a
worker started by `spawn` (a fork of a process whose OpenMP threads already ran can
hang), which first sets torch's threads and loads the same plugins as the parent.
A job returns its result and the lines it would have logged; the parent logs them when
it finishes, and draws one progress bar for all jobs from the step counts the workers'
training loops send (through the `report` hook the caller gives, so that this module knows nothing of training).
Each student is seeded on its own and every process runs torch on the same number of
threads, so a job's result is the one it has in a single process.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from ..core.errors import UserError, command_line


@dataclass(frozen=True)
class Job:
    """One unit of the grid: `work(log=...)` (a picklable function, its arguments bound
    by keyword), `steps` optimisation steps long (for the progress bar), named `label`
    (its training loop's label)."""

    work: Callable[..., Any]
    label: str
    steps: int


@dataclass(frozen=True)
class Workers:
    """How the jobs run: `processes` workers, each with torch on `threads` threads and the
    plugin modules `plugins` loaded (as the parent has them)."""

    processes: int
    threads: int = 1
    plugins: tuple[str, ...] = ()
    report: Callable[[Callable[[str, int, int], None]], None] | None = None
    """Called once in each worker with the sink of the parent's progress bar, `sink(label,
    steps done, steps)`: where the worker's training loops report (a picklable function,
    such as `functools.partial(training.loop.report_to, scalars)`)."""


class JobError(UserError):
    """A job failed in its worker: the job and the worker's error (and traceback, when
    it was not a user error)."""


def run_jobs(jobs: Sequence[Job], workers: Workers, progress: bool = True,
             log: Callable[[str], None] = print) -> list[Any]:
    """Every job's result, in the order of `jobs`; the first failure stops the others
    (their workers are terminated; what they had written stays, as after an interrupt)."""
    context = multiprocessing.get_context("spawn")
    results: dict[int, Any] = {}
    done_steps = {job.label: 0 for job in jobs}
    bar = tqdm(total=sum(job.steps for job in jobs), desc=f"{len(jobs)} jobs on {workers.processes} processes",
               disable=not progress, leave=False, dynamic_ncols=True)
    say = bar.write if progress else log
    with context.Manager() as manager, bar:
        updates = manager.Queue()
        pool = context.Pool(workers.processes, _start_worker,
                            (workers.threads, workers.plugins, workers.report, updates))
        try:
            pending = {i: pool.apply_async(_run, (job,)) for i, job in enumerate(jobs)}
            while pending:
                time.sleep(0.2)
                _drain(updates, done_steps, bar)
                for index in [i for i, result in pending.items() if result.ready()]:
                    results[index], lines = pending.pop(index).get()  # a JobError is raised here
                    job = jobs[index]
                    bar.update(job.steps - done_steps[job.label])  # a job done before reports no steps
                    done_steps[job.label] = job.steps
                    for line in lines:
                        say(line)
        finally:
            pool.terminate()
            pool.join()
    return [results[i] for i in range(len(jobs))]


def _drain(updates: queue.Queue, done_steps: dict[str, int], bar: tqdm) -> None:
    while True:
        try:
            label, done = updates.get_nowait()
        except queue.Empty:
            return
        if label in done_steps and done > done_steps[label]:
            bar.update(done - done_steps[label])
            done_steps[label] = done


def _start_worker(threads: int, plugins: tuple[str, ...], report: Callable[[Callable[[str, int, int], None]], None]
                  | None, updates: queue.Queue) -> None:
    import torch

    from ..plugins import load_entry_points, load_module

    torch.set_num_threads(threads)
    with command_line():  # a worker of `dgmc run --jobs`: its messages name the command line's flags
        load_entry_points()
        for module in plugins:
            load_module(module)
    if report is not None:
        report(lambda label, done, total: updates.put((label, done)))


def _run(job: Job) -> tuple[Any, list[str]]:
    """In a worker: the job's result and its log lines; an error comes back as a
    `JobError` naming the job (exceptions with their own constructors do not unpickle)."""
    lines: list[str] = []
    try:
        with command_line():
            return job.work(log=lines.append), lines
    except UserError as error:
        raise JobError(f"{job.label}: {error}") from None
    except Exception:
        raise JobError(f"{job.label} failed:\n{traceback.format_exc()}") from None
