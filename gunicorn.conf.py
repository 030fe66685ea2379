"""gunicorn settings for the hook service (`gunicorn --config gunicorn.conf.py hooks.app:app`).

Sized for a pod with 2 CPU cores; every value can be overridden from the environment.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hooks import logjson  # needs the repository root on sys.path (above)

# Metrics of all workers are aggregated through files in this directory. It must be set
# before a worker imports prometheus_client, which happens when the app is loaded.
_created_metrics_dir: str | None = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _created_metrics_dir = tempfile.mkdtemp(prefix="hooks-prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _created_metrics_dir

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
# One process per core, each computing one hook request at a time (the work is CPU-bound:
# more threads add memory, not throughput). docs/performance.md has the measurements.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# asyncio front (slow and idle connections, probes, admission, deadlines) + one compute
# thread per process: see hooks/worker.py and docs/service.md.
worker_class = "hooks.worker.HookWorker"
# The front's heartbeat runs every second; it stops only when a computation is stuck past
# its deadline (hooks.worker.STUCK_AFTER_S), and then the worker is replaced after this.
timeout = 9
# Below the pod's terminationGracePeriodSeconds (30 s): in-flight hooks finish, then exit.
graceful_timeout = 20
# Idle kept-alive connections cost the asyncio front nothing; staying open longer than the
# Go client's idle timeout (90 s, Metacontroller uses Go's default transport) means the client
# closes first, so a request never races the server closing an idle connection.
keepalive = 100
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"  # heartbeat files on tmpfs, not on a possibly slow disk
# No runtime control socket: nothing uses it, and $HOME is not writable in the container.
control_socket_disable = True

# The app logs one structured line per request; gunicorn's own lines are JSON too.
accesslog = None
loglevel = logging.getLevelName(logjson.level_from(os.environ.get("LOG_LEVEL"))).lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": logjson.JsonFormatter}},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["error_console"], "propagate": False},
        # Access lines off (gunicorn would log them whenever logconfig_dict is set).
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
    },
}


def on_starting(server: object) -> None:
    """Start with empty metrics: files of a previous run would be added to this one's."""
    for stale in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(stale)


def child_exit(server: object, worker: object) -> None:
    """Drop the live gauges of a worker that exited (its counters stay in the totals)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """Remove the metrics directory this config created (a given one is left in place)."""
    if _created_metrics_dir:
        shutil.rmtree(_created_metrics_dir, ignore_errors=True)
