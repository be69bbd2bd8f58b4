"""Work shared among forked processes, each with a pipe of its own, that fails fast.

A run evaluates its slices in forked workers (durable_rules holds the GIL in its C core:
processes, not threads). multiprocessing's pools share one result queue behind one lock:
a worker killed while it held that lock left the others, and the run, waiting forever
(seen in 4 of 20 kills). Here each worker writes to a pipe only it writes to; a worker
that dies mid-message leaves its pipe at end-of-file, which fails the work at once, and
the other workers are killed. Workers end within a second of their parent, so a killed
run leaves none behind.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

from engine.errors import RunFailed

DIED = ("a worker process of the run stopped while it worked on the employees (it was "
        "killed, crashed or ran out of memory)")


def forked(work: Callable[[Any], Any], count: int, workers: int,
           items: list[Any] | None = None) -> Iterator[Any]:
    """Yield ``work(items[i])`` (``work(i)`` without items) for i in 0..count-1, in order,
    computed by ``workers`` forked processes (slice i goes to worker i % workers). A
    worker's exception fails the whole with its message; a worker's death with DIED."""
    ctx = mp.get_context("fork")
    procs: list[tuple[Any, Connection]] = []
    try:
        for w in range(workers):
            reader, writer = ctx.Pipe(duplex=False)
            process = ctx.Process(target=_worker, daemon=True,
                                  args=(work, range(w, count, workers), writer, os.getpid(),
                                        items))
            process.start()
            writer.close()  # only the child holds the writing end: its death is end-of-file
            procs.append((process, reader))
        waiting = {reader for _, reader in procs}
        done: dict[int, Any] = {}
        following = 0
        while following < count:
            while following in done:
                yield done.pop(following)
                following += 1
            if following >= count:
                break
            if not waiting:
                raise RunFailed(DIED)
            for reader in wait(list(waiting)):
                try:
                    message = reader.recv()
                except (EOFError, OSError):
                    raise RunFailed(DIED) from None
                if message[0] == "slice":
                    done[message[1]] = message[2]
                elif message[0] == "done":
                    waiting.discard(reader)
                else:
                    raise RunFailed(message[1])
    finally:
        for process, reader in procs:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
            reader.close()


def _worker(work: Callable[[Any], Any], indexes: range, writer: Connection,
            parent: int, items: list[Any] | None) -> None:
    _die_with_parent(parent)
    # the parent's database connections are the parent's: this process opens its own
    from engine.db import forget_engines

    forget_engines()
    try:
        for i in indexes:
            writer.send(("slice", i, work(i if items is None else items[i])))
        writer.send(("done",))
    except RunFailed as exc:
        writer.send(("error", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which fails the run
        writer.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        writer.close()


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
