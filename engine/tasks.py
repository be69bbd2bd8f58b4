"""Runs as Celery work: plan a job, evaluate each chunk, finish the run (engine.chunks).

The broker is ``LAUREL_BROKER_URL`` (Redis in production: any number of ``laurel worker``
processes on any machines share a run). Without it, the broker is a folder under the
instance path (kombu's filesystem transport): no service to install, and ``laurel serve``
starts a worker on it. ``LAUREL_TASKS_EAGER=true`` runs every task at once in the caller
(tests). Tasks are acknowledged late and idempotent: a chunk redone by another worker
after one was killed counts once (engine.chunks).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

from engine import chunks, jobs
from engine.db import DEFAULT_INSTANCE, database_url, make_sessionmaker
from engine.errors import LaurelError, RunFailed
from engine.models import RunJob


def queue() -> str:
    """The queue runs go through (``LAUREL_QUEUE``, default ``laurel``): installations that
    share one broker each need their own, or a worker would take another one's runs."""
    return os.environ.get("LAUREL_QUEUE") or "laurel"


def broker_url() -> str | None:
    return os.environ.get("LAUREL_BROKER_URL") or None


def embedded_folder() -> Path:
    """The folder the embedded broker keeps its messages in."""
    base = Path(os.environ.get("LAUREL_INSTANCE_PATH") or DEFAULT_INSTANCE)
    folder = base / "broker"
    for sub in ("in", "processed"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return folder


def _configure(app: Celery) -> None:
    url = broker_url()
    conf: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_default_queue": queue(),
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "broker_connection_retry_on_startup": True,
        "task_always_eager": os.environ.get("LAUREL_TASKS_EAGER", "").lower()
        in ("1", "true", "yes", "on"),
        "task_eager_propagates": True,
    }
    if conf["task_always_eager"]:
        conf["broker_url"] = "memory://"  # nothing leaves the process
    elif url:
        conf["broker_url"] = url
        # a message of a worker that vanished comes back after a minute, not an hour;
        # the chunk's lease keeps two workers from doing it at once (engine.chunks)
        conf["broker_transport_options"] = {"visibility_timeout": 60}
    else:
        folder = embedded_folder()
        conf["broker_url"] = "filesystem://"
        conf["broker_transport_options"] = {
            "data_folder_in": str(folder / "in"), "data_folder_out": str(folder / "in"),
            "processed_folder": str(folder / "processed"), "store_processed": False}
    app.conf.update(conf)


app = Celery("laurel")
_configure(app)


def reconfigure() -> None:
    """Read the LAUREL_ settings again (a test or a command that changed them); the
    connections made to the former broker are dropped."""
    _configure(app)
    pool = getattr(app, "_pool", None)
    if pool is not None:
        pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


def _factory() -> Any:
    return make_sessionmaker(database_url())


@app.task(name="laurel.plan")
def plan_task(job_id: int) -> None:
    """Plan a job's run and queue one task per chunk."""
    factory = _factory()
    with factory() as session:
        try:
            indexes = chunks.plan(session, job_id)
            session.commit()
        except LaurelError as exc:
            session.rollback()
            jobs.fail_job(factory, job_id, str(exc))
            return
        run_id = session.get(RunJob, job_id).run_id
    for index in indexes:
        chunk_task.delay(run_id, index)


@app.task(name="laurel.chunk")
def chunk_task(run_id: int, index: int) -> None:
    """Evaluate one chunk; the worker that stores the last one queues the finish."""
    try:
        result = chunks.evaluate_chunk(_factory(), run_id, index)
    except RunFailed:
        return  # the run failed with the reason (engine.chunks.fail)
    if result == "done":
        with _factory()() as session:
            if chunks.pending(session, run_id) == 0:
                finish_task.delay(run_id)


@app.task(name="laurel.finish")
def finish_task(run_id: int) -> None:
    """Store the run once every chunk is in."""
    factory = _factory()
    with factory() as session:
        try:
            chunks.finish(session, run_id)
            session.commit()
        except LaurelError as exc:
            session.rollback()
            chunks.fail(session, run_id, str(exc))
            session.commit()
