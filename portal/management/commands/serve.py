"""Runs the whole portal in one terminal: web server, one Celery worker and Celery beat."""
import os
import signal
import subprocess
import sys
import time
from ctypes import CDLL
from ctypes.util import find_library

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.management.process_groups import stop_process_groups


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in each child before exec: if `serve` itself is killed, the child gets SIGTERM."""
    try:
        CDLL(find_library("c") or "libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: children are still stopped on a normal exit
        pass


# Slow readers (a zip at 100 KB/s) each hold one server thread for as long as they read, and
# threads blocked on a socket cost little: many threads per worker keep /healthz and the API
# answering beside them (see README, "Production deployment", and bench/slow_clients.py).
WEB_WORKERS = 2
WEB_THREADS = 128


def web_command(*, host: str, port: int, workers: int = WEB_WORKERS, threads: int = WEB_THREADS,
                python: str = sys.executable) -> list[str]:
    """The gunicorn command line of the web server (also used by the benchmarks)."""
    return [python, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"{host}:{port}",
            "--worker-class", "gthread", "--workers", str(workers), "--threads", str(threads),
            # Accepted connections beyond the threads wait in the worker, not in the kernel.
            "--worker-connections", str(max(1000, 4 * threads)),
            "--timeout", "0",  # long downloads are not a stuck worker
            "--logger-class", "portal.logs.RedactingGunicornLogger", "--access-logfile", "-"]


class Command(BaseCommand):
    help = "Runs the web server (gunicorn), a Celery worker and Celery beat until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes.")
        parser.add_argument("--web-workers", type=int, default=WEB_WORKERS, help="gunicorn worker processes.")
        parser.add_argument("--web-threads", type=int, default=WEB_THREADS, help="Threads per web worker.")
        parser.add_argument("--stop-timeout", type=float, default=settings.SERVE_STOP_TIMEOUT_SECONDS,
                            help="Seconds a graceful stop may take before everything left is killed.")

    def handle(self, *args, port: int, host: str, concurrency: int, web_workers: int, web_threads: int,
               stop_timeout: float, **options):
        python = sys.executable
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "portal.settings.base")}
        # Links in mails and metalinks point at this server unless the operator said otherwise.
        env.setdefault("PORTAL_BASE_URL", f"http://{host}:{port}")
        commands = {
            "web": web_command(host=host, port=port, workers=web_workers, threads=web_threads, python=python),
            "worker": [python, "-m", "celery", "-A", "portal", "worker", "--beat",
                       "--schedule", settings.CELERY_BEAT_SCHEDULE_FILENAME,
                       "--concurrency", str(concurrency), "--loglevel", "INFO"],
        }
        # Each child leads its own process group, so stopping reaches its workers too.
        children = {name: subprocess.Popen(cmd, env=env, cwd=settings.BASE_DIR, start_new_session=True,
                                           preexec_fn=_die_with_parent) for name, cmd in commands.items()}
        self.stdout.write(self.style.SUCCESS(
            f"Orderly is running: browse http://{host}:{port}/ (API docs at /api/docs/, "
            f"health at /healthz). Data in {settings.DATA_DIR}. Press Ctrl-C to stop."
        ))
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exit_code = 0
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with code {child.returncode}; stopping.")
                        exit_code = child.returncode or 1
                        stopping = True
                time.sleep(0.5)
        finally:
            stop_process_groups(children.values(), timeout=stop_timeout, say=self.stderr.write)
            self.stdout.write("Stopped.")
        if exit_code:
            sys.exit(exit_code)
