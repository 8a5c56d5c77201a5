"""`manage.py rundev`: the README's run command, after `make` has installed everything.

Migrates, imports content, creates the demo learner and instructor, makes sure a
Redis answers at REDIS_URL (starting an embedded one if not), then starts a Celery
worker, celery beat and the web server on 127.0.0.1:8000, and stops them all on
Ctrl-C. It never falls back to eager in-process Celery: the worker is real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from gradlab.redis_embedded import RedisHandle, ensure_redis

DEMO_ACCOUNTS = (
    # (username, password, instructor?)
    ("learner", "learner-demo-2026", False),
    ("instructor", "instructor-demo-2026", True),
)


def demo_accounts_ensure() -> list[tuple[str, str, bool]]:
    """Create (or reset) the demo accounts; return (username, password, is_instructor) rows."""
    group, _ = Group.objects.get_or_create(name="instructor")
    for username, password, is_instructor in DEMO_ACCOUNTS:
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.set_password(password)
        user.is_staff = is_instructor  # instructors use the admin for authoring
        user.save()
        if is_instructor:
            user.groups.add(group)
    return list(DEMO_ACCOUNTS)


class Command(BaseCommand):
    help = "Run the development site with a real Celery worker, beat and Redis (Ctrl-C stops everything)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
        parser.add_argument("--skip-setup", action="store_true", help="skip migrate, import_content and demo accounts")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("rundev is for development; production uses docker-compose.yml")
        if not options["skip_setup"]:
            call_command("migrate", interactive=False, verbosity=0)
            self.stdout.write("database migrated")
            try:
                call_command("import_content")
            except CommandError as error:  # one broken file must not keep the site from starting
                self.stderr.write(f"content imported with errors: {error}")
            accounts = demo_accounts_ensure()

        call_command("sandbox_check", stdout=self.stdout)  # stops here, with the reason, below the minimum
        redis_handle = ensure_redis(settings.REDIS_URL, settings.VAR_DIR / "redis")
        origin = "started an embedded server" if redis_handle.process else "using the server"
        self.stdout.write(f"redis: {origin} at {settings.REDIS_URL}")
        processes = self._start_processes(options)
        self._banner(options["addrport"], None if options["skip_setup"] else accounts)
        self._supervise(processes, redis_handle)

    def _start_processes(self, options: dict[str, Any]) -> dict[str, subprocess.Popen[bytes]]:
        python = sys.executable
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        beat_schedule = settings.VAR_DIR / "celerybeat-schedule"
        commands = {
            "worker": [
                python, "-m", "celery", "-A", "gradlab", "worker", "-Q", settings.GRADING_QUEUE,
                "--concurrency", str(options["workers"]), "--loglevel", "INFO", "-n", "gradlab-dev@%h",
            ],
            "beat": [python, "-m", "celery", "-A", "gradlab", "beat", "--loglevel", "INFO", "-s", str(beat_schedule)],
            "web": [python, "manage.py", "runserver", options["addrport"], "--noreload"],
        }  # fmt: skip
        processes = {}
        for name, command in commands.items():
            # Own process group each, so Ctrl-C handling is ours and children die with their leader.
            processes[name] = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True)
        return processes

    def _banner(self, addrport: str, accounts: list[tuple[str, str, bool]] | None) -> None:
        lines = ["", f"Gradlab is running at http://{addrport}/", ""]
        if accounts:
            lines.append("Demo logins:")
            for username, password, is_instructor in accounts:
                role = "instructor (admin at /admin/)" if is_instructor else "learner"
                lines.append(f"  {username:<11} password {password:<22} {role}")
            lines.append("")
        lines.append("Press Ctrl-C to stop the web server, the worker, beat and (if started here) Redis.")
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))

    def _supervise(self, processes: dict[str, subprocess.Popen[bytes]], redis_handle: RedisHandle) -> None:
        stopping = False

        def request_stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        exit_code = 0
        try:
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping everything")
                        exit_code = 1
                        stopping = True
                time.sleep(0.3)
        finally:
            self.stdout.write("stopping ...")
            for process in processes.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for process in processes.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            redis_handle.stop()
            self.stdout.write("stopped")
        if exit_code:
            raise SystemExit(exit_code)
