"""Work shared among forked processes, each with a pipe of its own, that fails fast.

A run evaluates its slices in forked workers (durable_rules holds the GIL in its C core:
processes, not threads). multiprocessing's pools share one result queue behind one lock:
a worker killed while it held that lock left the others, and the run, waiting forever
(seen in 4 of 20 kills). Here each worker has a pipe of its own, by which it is handed
its next slice and gives it back; a worker that dies mid-message leaves its pipe at
end-of-file, which fails the work at once, and the other workers are killed. Workers end
within a second of their parent, so a killed run leaves none behind.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from engine.errors import RunFailed

DIED = ("a worker process of the run stopped while it worked on the employees (it was "
        "killed, crashed or ran out of memory)")


def forked(work: Callable[[Any], Any], count: int, workers: int,
           items: list[Any] | None = None) -> Iterator[Any]:
    """Yield ``work(items[i])`` (``work(i)`` without items) for i in 0..count-1, in order,
    computed by ``workers`` forked processes (a Pool of one round). Each worker is handed
    the next slice when it sends its last one back, so a worker slowed down (by the
    machine, or by a slice that does more) takes fewer. A worker's exception fails the
    whole with its message; a worker's death with DIED."""
    with Pool(work, workers) as pool:
        for _, result in pool.map(list(range(count)) if items is None else items):
            yield result


class Pool:
    """``workers`` processes forked at the first round (map), so that ``work`` sees what
    this process held then, which then do ``work(item)`` round after round until the
    pool is closed: a run walks its population and then evaluates its chunks in the same
    processes, each chunk where its employees' facts were worked out by the walk
    (engine.jobs.run_here)."""

    def __init__(self, work: Callable[[Any], Any], workers: int) -> None:
        self.work, self.workers = work, max(1, workers)
        self.procs: list[tuple[Any, Connection]] = []

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.close(graceful=kind is None)

    def _start(self) -> None:
        ctx = mp.get_context("fork")
        for _ in range(self.workers):
            mine, theirs = ctx.Pipe(duplex=True)
            process = ctx.Process(target=_worker, daemon=True,
                                  args=(self.work, theirs, os.getpid()))
            process.start()
            theirs.close()  # only the child holds its end: its death is end-of-file
            self.procs.append((process, mine))

    def map(self, items: list[Any], owners: list[int | None] | None = None
            ) -> Iterator[tuple[int, Any]]:
        """Yield (the worker's number, ``work(item)``) for each item, in order. A worker
        is handed, when it sends its last one back, the first item not handed yet of
        those ``owners`` gives it (its number; None: anyone's), else of anyone's, else
        the first of another worker's. A worker's exception fails the round with its
        message (RunFailed); a worker's death with DIED."""
        if not self.procs:
            self._start()
        handout = Handout(len(items), owners)
        busy: dict[Connection, int] = {}
        number = {conn: n for n, (_, conn) in enumerate(self.procs)}

        def hand(conn: Connection) -> None:
            mine = handout.take(number[conn])
            if mine is None:
                return
            busy[conn] = mine
            try:
                conn.send((mine, items[mine]))
            except OSError:  # its worker is gone: its end-of-file says so at the wait
                pass

        for _, conn in self.procs:
            hand(conn)
        done: dict[int, tuple[int, Any]] = {}
        following = 0
        while following < len(items):
            while following in done:
                yield done.pop(following)
                following += 1
            if following >= len(items):
                break
            if not busy:
                raise RunFailed(DIED)
            for conn in wait(list(busy)):
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    raise RunFailed(DIED) from None
                if message[0] != "slice":
                    raise RunFailed(message[1])
                del busy[conn]
                done[message[1]] = (number[conn], message[2])
                hand(conn)

    def close(self, graceful: bool = True) -> None:
        """End the workers: asked to (they close their connections) where ``graceful``
        and idle, else killed."""
        if graceful:
            for _, conn in self.procs:
                try:
                    conn.send(None)
                except OSError:
                    pass
        for process, conn in self.procs:
            if graceful:
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
            conn.close()
        self.procs = []


class Handout:
    """Which item of a round a worker is handed next (Pool.map): its own first, then
    anyone's, then the first of another worker's, each in order (the last items, a run's
    smallest chunks, stay for the end); each item once."""

    def __init__(self, count: int, owners: list[int | None] | None = None) -> None:
        self.queues: dict[int | None, deque[int]] = {}
        for i in range(count):
            self.queues.setdefault(None if owners is None else owners[i], deque()).append(i)

    def take(self, worker: int) -> int | None:
        """The next item for ``worker``, or None: none left."""
        queue = self.queues.get(worker) or self.queues.get(None) or min(
            (q for q in self.queues.values() if q), key=lambda q: q[0], default=None)
        return queue.popleft() if queue else None


def _worker(work: Callable[[Any], Any], conn: Connection, parent: int) -> None:
    _die_with_parent(parent)
    # the parent's database connections are the parent's: this process opens its own
    from engine.db import forget_engines

    forget_engines()
    # what this process was forked with is its parent's, held as it was: the collector
    # leaves it be (a full collection walked every object of the parent's: 60 ms of a
    # 20,000-employee run's walk of 320 ms, each process), and collects what this process
    # makes, whether or not the parent's collector was on at the fork
    gc.freeze()
    gc.enable()
    try:
        while (message := conn.recv()) is not None:
            i, item = message
            conn.send(("slice", i, work(item)))
    except RunFailed as exc:
        conn.send(("error", str(exc)))
    except EOFError:
        pass  # the parent stopped listening: nothing to give it
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which fails the run
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _die_with_parent(parent: int) -> None:
    """End this process soon after its parent dies.

    The kernel is asked to (PR_SET_PDEATHSIG, Linux), and a watch thread checks too: some
    sandboxes accept the request and never send the signal. A worker that outlives its run
    has nobody to give its slices to.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="laurel-parent-watch").start()
