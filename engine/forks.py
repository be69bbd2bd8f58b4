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
    computed by ``workers`` forked processes. Each worker is handed the next slice when it
    sends its last one back, so a worker slowed down (by the machine, or by a slice that
    does more) takes fewer. A worker's exception fails the whole with its message; a
    worker's death with DIED."""
    ctx = mp.get_context("fork")
    procs: list[tuple[Any, Connection]] = []
    following = handed = 0

    def hand(conn: Connection) -> None:
        nonlocal handed
        try:  # the next slice, or None: no more
            conn.send(handed if handed < count else None)
        except OSError:  # its worker is gone: its end-of-file says so at the next wait
            return
        handed += handed < count

    try:
        for _ in range(workers):
            mine, theirs = ctx.Pipe(duplex=True)
            process = ctx.Process(target=_worker, daemon=True,
                                  args=(work, theirs, os.getpid(), items))
            process.start()
            theirs.close()  # only the child holds its end: its death is end-of-file
            procs.append((process, mine))
        for _, conn in procs:
            hand(conn)
        waiting = {conn for _, conn in procs}
        done: dict[int, Any] = {}
        while following < count:
            while following in done:
                yield done.pop(following)
                following += 1
            if following >= count:
                break
            if not waiting:
                raise RunFailed(DIED)
            for conn in wait(list(waiting)):
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    raise RunFailed(DIED) from None
                if message[0] == "slice":
                    done[message[1]] = message[2]
                    hand(conn)
                elif message[0] == "done":
                    waiting.discard(conn)
                else:
                    raise RunFailed(message[1])
    finally:
        for process, conn in procs:
            if process.is_alive():
                process.kill()
            process.join(timeout=10)
            conn.close()


def _worker(work: Callable[[Any], Any], conn: Connection, parent: int,
            items: list[Any] | None) -> None:
    _die_with_parent(parent)
    # the parent's database connections are the parent's: this process opens its own
    from engine.db import forget_engines

    forget_engines()
    try:
        while (i := conn.recv()) is not None:
            conn.send(("slice", i, work(i if items is None else items[i])))
        conn.send(("done",))
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
