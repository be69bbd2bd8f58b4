"""Engine work in a child process: a crash there fails the call, never the caller.

durable_rules' C core can take its process down (DESIGN.md); the back office must not go
with it. Try-it, the impact preview and the publish gate call ``run``: where isolation is
on (the back office turns it on), the work runs in a process forked from a clean server
(multiprocessing's forkserver, one process per call), on a session of its own on the same
database, and only its result comes back. A child that dies or overruns ``TIMEOUT`` fails
the call with RunFailed saying so, and the caller goes on. Elsewhere (the command line,
the engine's own tests) the work runs in place. Isolation is a mark on the session
(``session.info[ISOLATE]``): the back office's sessions carry it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from engine.errors import LaurelError, RunFailed
from engine.messages import message_of

T = TypeVar("T")
TIMEOUT = 600.0  # seconds one call may take
WORKERS = 2  # calls at once
WATCH_SECONDS = 1.0  # how often a child looks whether its caller is still there
PRELOAD = ["engine.authoring", "engine.runs", "engine.specs", "durable.engine"]

ISOLATE = "laurel_isolate"
_pool: ProcessPoolExecutor | None = None
_lock = threading.Lock()


def _executor() -> ProcessPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            ctx = mp.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _pool = ProcessPoolExecutor(max_workers=WORKERS, mp_context=ctx,
                                        max_tasks_per_child=1, initializer=_outlive_not,
                                        initargs=(os.getpid(),))
        return _pool


def _outlive_not(caller: int) -> None:
    """In each child: exit once the process that made the pool is gone.

    A pool's idle child waits on a queue it holds both ends of, so it never sees its caller
    go; a caller that did not shut its pool down (a server stopped by SIGTERM) left its
    children, and the forkserver they keep alive, running for ever.
    """
    def watch() -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            try:
                os.kill(caller, 0)
            except (ProcessLookupError, PermissionError):  # gone (or its pid another's)
                os._exit(0)

    threading.Thread(target=watch, name="laurel-isolate-watch", daemon=True).start()


def _reset(kill: bool) -> None:
    """Drop the pool (after a child died or overran); kill its processes if asked."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    if kill:
        for process in list(getattr(pool, "_processes", {}).values()):
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def run(session: Session, fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn(session, *args)``, in a child process when the session asks for it.

    ``fn`` is a module-level function and its arguments and result plain data: they cross
    the process boundary. The child sees what the database holds (committed), not the
    caller's pending changes.
    """
    if not session.info.get(ISOLATE):
        return fn(session, *args)
    url = session.get_bind().url.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if k.startswith("LAUREL_")}
    try:
        future = _executor().submit(_child, url, session.info.get("actor", "system"), env,
                                    fn, args)
        kind, payload = future.result(timeout=TIMEOUT)
    except BrokenProcessPool:
        _reset(kill=False)
        raise RunFailed("the evaluation stopped: the rule engine's process died (the rule "
                        "set may be beyond what the engine can hold); nothing was changed"
                        ) from None
    except FutureTimeout:
        _reset(kill=True)
        raise RunFailed(f"the evaluation took more than {TIMEOUT:.0f} s and was stopped; "
                        "nothing was changed") from None
    if kind == "error":
        raise _rebuild(*payload)
    return payload


def _child(url: str, actor: str, env: dict[str, str], fn: Callable[..., Any],
           args: tuple[Any, ...]) -> tuple[str, Any]:
    from engine import db

    os.environ.update(env)
    session = db.make_sessionmaker(url)()
    session.info["actor"] = actor
    try:
        return "ok", fn(session, *args)
    except LaurelError as exc:
        # its message as a message (engine.messages): the caller says it in its reader's
        # language
        # with what it names (a field, a row, a file): the caller's form shows it there
        return "error", (type(exc), message_of(exc), _named(exc))
    finally:
        session.rollback()
        session.close()
        db.dispose_engines()


def _named(exc: LaurelError) -> dict[str, Any]:
    """What the error names besides its message (its attributes) that can cross processes."""
    out = {}
    for name, value in vars(exc).items():
        try:
            pickle.dumps(value)
        except Exception:  # noqa: BLE001 - anything that does not pickle stays behind
            continue
        out[name] = value
    return out


def _rebuild(cls: type[LaurelError], message: str,
             named: dict[str, Any] | None = None) -> LaurelError:
    """The child's error as the caller would have had it: its kind, its message and what it
    names (field, row, file...), whatever arguments its class takes."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(named or {})
    return error
