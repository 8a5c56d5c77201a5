"""Courses: a deadline rush through Redis and Celery, and the gradebook of a 300-learner course.

Usage: ``.venv/bin/python bench/bench_courses.py [--learners 300] [--per-learner 3] [--single 40]
[--skip-rush] [--no-write]``

(a) deadline rush: a course with ``--learners`` enrolled learners (each with a bearer token) and an
    assignment on linear-backward due about 70 s after the set-up. First ``--single``
    submissions of one learner, one at a time (the single-learner submit -> verdict p50/p95 of
    this run); then every learner posts ``--per-learner`` submissions of the reference solution
    at random moments of the last minute before the due time (16 client threads following that
    schedule), through `POST /api/submissions` served by gunicorn (2 processes), an embedded
    redis-server and `celery worker -c 2`. Reported: submit -> verdict p50/p95 of the rush, the
    drain time (first POST to the last verdict), and the checks: every row graded, each claimed
    and graded exactly once, every learner's gradebook cell counting 3 attempts and full points.
(b) gradebook: ``--learners`` learners x 30 items (3 assignments of 10 exercises) with a score in
    every cell, on PostgreSQL (if one answers on 127.0.0.1:5432) and on a SQLite file: the
    gradebook page and its CSV through Django's test client as the course owner, p50/p95 of 15
    requests after 2 warm-ups (target p50 < 300 ms).
Replaces the "## Courses" section of docs/benchmarks.md; with ``--skip-rush``, only its gradebook figures
(the rush figures of the last full run, and any notes on them, stay).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_submissions import (  # noqa: E402
    Services,
    choose_database,
    free_port,
    start_stack,
    submit,
    wait_finished,
    web_ready,
)
from bench.common import BENCHMARKS_MD, machine, percentile, section_bounds, section_replace  # noqa: E402

SECTION = "## Courses"
PREAMBLE = (
    "Measured by `.venv/bin/python bench/bench_courses.py` on this machine (client, web server, worker and "
    "database share the cores)."
)
GRADEBOOK_MARK = "**Gradebook**"
EXERCISE = "linear-backward"
GRADEBOOK_ITEMS_PER_ASSIGNMENT = 10
GRADEBOOK_ASSIGNMENTS = 3


def environment(database_url: str, workdir: Path, redis_url: str = "redis://127.0.0.1:1/0") -> None:
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        GRADLAB_ENV="development",
        DEBUG="0",
        GRADLAB_VAR_DIR=str(workdir / "var"),
        GRADER_SUBMISSIONS_PER_MINUTE="1000000",
        DJANGO_SETTINGS_MODULE="gradlab.settings",
        LOG_LEVEL="WARNING",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=300)
    parser.add_argument("--per-learner", type=int, default=3)
    parser.add_argument("--single", type=int, default=40)
    parser.add_argument("--skip-rush", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--gradebook-only", help=argparse.SUPPRESS)  # child process: DATABASE_URL to measure
    options = parser.parse_args()

    if options.gradebook_only:
        workdir = Path(tempfile.mkdtemp(prefix="gradlab-bench-gb-"))
        environment(options.gradebook_only, workdir)
        try:
            print(json.dumps(gradebook_figures(options.learners)))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return

    figures: dict[str, Any] = {"load": None}
    if not options.skip_rush:
        workdir = Path(tempfile.mkdtemp(prefix="gradlab-bench-"))
        database_url, label, drop = choose_database(workdir)
        redis_port, web_port = free_port(), free_port()
        environment(database_url, workdir, f"redis://127.0.0.1:{redis_port}/0")
        services = Services(dict(os.environ, PYTHONUNBUFFERED="1"), workdir)
        try:
            figures["rush"] = rush(options, services, redis_port, web_port, workdir)
            figures["rush"]["database"] = label
        finally:
            services.stop()
            from django.db import connections

            connections.close_all()
            drop()
            shutil.rmtree(workdir, ignore_errors=True)
    figures["gradebook"] = {}
    for label, url, cleanup in gradebook_databases():
        try:
            result = subprocess.run(
                [sys.executable, __file__, "--gradebook-only", url, "--learners", str(options.learners)],
                cwd=ROOT, capture_output=True, text=True, check=True,
            )  # fmt: skip
            figures["gradebook"][label] = json.loads(result.stdout.strip().splitlines()[-1])
        finally:
            cleanup()
    figures["load"] = os.getloadavg()
    if options.skip_rush:
        report = render_gradebook(figures, options, alone=True)
        print(report)
        if not options.no_write:
            section_replace(SECTION, with_gradebook(current_section(), report))
        return
    report = render(figures, options)
    print(report)
    if not options.no_write:
        section_replace(SECTION, report)


# --- (a) deadline rush ------------------------------------------------------------------


def course_seed(slug: str, title: str, count: int, *, source: str, named: bool = False) -> tuple[Any, Any, list[Any]]:
    """Migrate, import content/, and make a course with its owner and `count` enrolled learners.

    `named` gives each learner an address and a name (as a roster upload would).
    """
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from courses.models import Course, CourseRole, CourseStaff, Enrollment

    call_command("migrate", verbosity=0)
    call_command("import_content", verbosity=0, stdout=io.StringIO())
    owner = User.objects.create_user("owner")
    course = Course.objects.create(slug=slug, title=title)
    CourseStaff.objects.create(course=course, user=owner, role=CourseRole.OWNER)
    people = [
        User(username=f"learner{n:03d}", email=f"learner{n:03d}@example.org", first_name="L", last_name=str(n))
        if named
        else User(username=f"learner{n:03d}")
        for n in range(count)
    ]
    learners = User.objects.bulk_create(people)
    Enrollment.objects.bulk_create([Enrollment(course=course, user=user, source=source) for user in learners])
    return owner, course, learners


def rush(options: argparse.Namespace, services: Services, redis_port: int, web_port: int, workdir: Path) -> dict:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.utils import timezone

    from courses.models import (
        Assignment,
        AssignmentItem,
        AssignmentScore,
        ItemKind,
        ItemScore,
    )
    from grader.auth import api_token_create
    from grader.models import Exercise, Submission, SubmissionStatus

    _, course, learners = course_seed("rush", "Rush", options.learners, source="staff")
    tokens = [api_token_create(user)[1] for user in learners]
    solo = User.objects.create_user("solo")  # the single-learner figures: not in the course
    solo_token = api_token_create(solo)[1]
    code = (ROOT / "content" / "exercises" / EXERCISE / "solution.py").read_text()

    start_stack(services, redis_port, web_port, workdir)

    import requests

    base = f"http://127.0.0.1:{web_port}"

    def session(token: str) -> requests.Session:
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        return http

    solo_http = session(solo_token)
    web_ready(solo_http, base)

    def post(http: requests.Session) -> tuple[int, float]:
        return submit(http, base, code, timeout_s=60)

    warm = [post(solo_http)[0] for _ in range(4)]
    wait_finished(warm, 120)

    # Single learner, one at a time, in this run.
    single_sent: dict[int, float] = {}
    for _ in range(options.single):
        submission_id, sent = post(solo_http)
        single_sent[submission_id] = sent
        wait_finished([submission_id], 60)
    single_ms = [
        (finished.timestamp() - single_sent[pk]) * 1000
        for pk, finished in Submission.objects.filter(pk__in=single_sent).values_list("pk", "finished_at")
        if finished is not None
    ]

    # The assignment is due 70 s from now; the rush happens in the minute before.
    now = timezone.now()
    due_at = now + timedelta(seconds=70)
    assignment = Assignment.objects.create(
        course=course, title="Due now", opens_at=now - timedelta(days=1), due_at=due_at, late_policy="hard_close"
    )
    item = AssignmentItem.objects.create(
        assignment=assignment, kind=ItemKind.EXERCISE, exercise=Exercise.objects.get(slug=EXERCISE), points=10
    )
    rng = random.Random(2027)
    window_start = due_at.timestamp() - 60
    schedule = sorted(
        (window_start + rng.uniform(0, 55), index)
        for index in range(options.learners)
        for _ in range(options.per_learner)
    )
    sessions = [session(token) for token in tokens]
    while time.time() < window_start:
        time.sleep(0.05)
    rush_sent: dict[int, float] = {}
    lock = threading.Lock()

    def fire(slot: tuple[float, int]) -> None:
        at, index = slot
        delay = at - time.time()
        if delay > 0:
            time.sleep(delay)
        submission_id, sent = post(sessions[index])
        with lock:
            rush_sent[submission_id] = sent

    first_post = time.time()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(fire, schedule))
    posted_s = time.time() - first_post
    last_post = max(rush_sent.values())
    wait_finished(list(rush_sent), 1800)
    rows = list(
        Submission.objects.filter(pk__in=rush_sent).values_list(
            "pk", "created_at", "finished_at", "status", "claim_count", "graded_count", "user_id"
        )
    )
    rush_ms = [(finished.timestamp() - rush_sent[pk]) * 1000 for pk, _, finished, *_ in rows if finished]
    graded_once = sum(
        1 for _, _, _, status, claims, graded, _ in rows if status == SubmissionStatus.GRADED and claims == graded == 1
    )
    before_due = sum(1 for _, created, *_ in rows if created <= due_at)
    last_finished = max(finished.timestamp() for _, _, finished, *_ in rows if finished)
    # Scores are recounted after each verdict commits (in the worker); give the last ones a moment.
    time.sleep(2)
    # What the gradebook must say (hard close): every learner's cell counts all their graded
    # submissions as attempts, and full points exactly when one of them was made before the due time.
    on_time = {user_id for _, created, _, _, _, _, user_id in rows if created <= due_at}
    cells = {row.learner_id: row for row in ItemScore.objects.filter(item=item)}
    totals = dict(AssignmentScore.objects.filter(assignment=assignment).values_list("learner_id", "score"))
    cells_right = sum(
        1
        for user in learners
        if (cell := cells.get(user.pk)) is not None
        and cell.attempts == options.per_learner
        and cell.points == (10.0 if user.pk in on_time else None)
        and totals.get(user.pk, 0.0) == (10.0 if user.pk in on_time else 0.0)
    )
    return {
        "learners": options.learners,
        "per_learner": options.per_learner,
        "single_n": len(single_ms),
        "single_p50": statistics.median(single_ms),
        "single_p95": percentile(single_ms, 0.95),
        "rush_n": len(rows),
        "rush_p50": statistics.median(rush_ms),
        "rush_p95": percentile(rush_ms, 0.95),
        "posted_s": posted_s,
        "posted_before_due_s": due_at.timestamp() - last_post,
        "drain_s": last_finished - first_post,
        "after_due_s": last_finished - due_at.timestamp(),
        "graded_once": graded_once,
        "before_due": before_due,
        "cells_right": cells_right,
        "learners_on_time": len(on_time),
    }


# --- (b) gradebook --------------------------------------------------------------------------


def gradebook_databases() -> list[tuple[str, str, Any]]:
    """(label, DATABASE_URL, cleanup) for PostgreSQL (when one answers) and a SQLite file."""
    found = []
    workdir = Path(tempfile.mkdtemp(prefix="gradlab-bench-db-"))
    url, label, drop = choose_database(workdir)
    if label == "PostgreSQL":
        found.append((label, url, drop))
    sqlite = workdir / "gradebook.sqlite3"
    found.append(("SQLite (file)", f"sqlite:////{str(sqlite).lstrip('/')}", lambda: shutil.rmtree(workdir, True)))
    return found


def gradebook_seed(learner_count: int) -> tuple[Any, Any, int, int]:
    """(course, owner, cells, items): a course of `learner_count` learners x 30 scored items in the
    database of DATABASE_URL (migrated here), analyzed. Needs django.setup()."""
    from django.db import connection
    from django.utils import timezone

    from courses.models import (
        Assignment,
        AssignmentItem,
        AssignmentScore,
        ItemKind,
        ItemScore,
    )
    from grader.models import Exercise

    owner, course, learners = course_seed("big", "Big course", learner_count, source="roster", named=True)
    exercises = list(Exercise.objects.filter(is_active=True)[:GRADEBOOK_ITEMS_PER_ASSIGNMENT])
    now = timezone.now()
    rng = random.Random(7)
    items = []
    for week in range(GRADEBOOK_ASSIGNMENTS):
        assignment = Assignment.objects.create(
            course=course,
            title=f"Week {week + 1}",
            opens_at=now - timedelta(days=30),
            due_at=now - timedelta(days=week),
        )
        for order, exercise in enumerate(exercises):
            items.append(
                AssignmentItem.objects.create(
                    assignment=assignment, order=order, kind=ItemKind.EXERCISE, exercise=exercise, points=10
                )
            )
    scores = []
    for user in learners:
        for item in items:
            points = round(rng.uniform(0, 10), 2)
            late = rng.random() < 0.1
            scores.append(
                ItemScore(
                    item=item,
                    learner=user,
                    computed_points=points,
                    points=points,
                    counted_at=now - timedelta(hours=rng.uniform(1, 500)),
                    attempts=rng.randint(1, 5),
                    is_late=late,
                    late_days=1 if late else 0,
                )
            )
    ItemScore.objects.bulk_create(scores, batch_size=2000)
    AssignmentScore.objects.bulk_create(
        [
            AssignmentScore(assignment=assignment, learner=user, score=50.0, max_score=100.0)
            for assignment in Assignment.objects.filter(course=course)
            for user in learners
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return course, owner, len(scores), len(items)


def gradebook_figures(learner_count: int) -> dict[str, Any]:
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    course, owner, cell_count, item_count = gradebook_seed(learner_count)
    client = Client()
    client.force_login(owner)

    def timed(url: str) -> tuple[list[float], int]:
        size = 0
        for _ in range(2):
            client.get(url)
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            response = client.get(url)
            samples.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{url} -> {response.status_code}")
            size = len(response.content)
        return samples, size

    page, page_bytes = timed(f"/courses/{course.slug}/gradebook/")
    csv_times, csv_bytes = timed(f"/courses/{course.slug}/gradebook.csv")
    return {
        "vendor": connection.vendor,
        "cells": cell_count,
        "learners": learner_count,
        "items": item_count,
        "page_p50": statistics.median(page),
        "page_p95": percentile(page, 0.95),
        "page_kib": page_bytes / 1024,
        "csv_p50": statistics.median(csv_times),
        "csv_p95": percentile(csv_times, 0.95),
        "csv_kib": csv_bytes / 1024,
    }


# --- Report -------------------------------------------------------------------------------


def render(figures: dict[str, Any], options: argparse.Namespace) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION,
        "",
        PREAMBLE,
        "",
        f"### {now} — {machine()}",
        "",
        f"Load average at the end of the run (1, 5, 15 min): {load_text(figures['load'])}.",
        "",
    ]
    rush_figures = figures.get("rush")
    if rush_figures:
        r = rush_figures
        total = r["rush_n"]
        lines += [
            f"**Deadline rush** ({r['database']}, gunicorn 2 processes, embedded redis-server, "
            "`celery worker -c 2`): "
            f"{r['learners']} learners each submit linear-backward's reference {r['per_learner']} times at random "
            f"moments of the last minute before the due time (16 client threads); each verdict recounts the "
            "learner's assignment score in the worker.",
            "",
            "| what | p50 | p95 | n |",
            "|---|---|---|---|",
            f"| single learner, one at a time, submit -> verdict stored (same run, before the rush) | "
            f"{r['single_p50']:.0f} ms | {r['single_p95']:.0f} ms | {r['single_n']} |",
            f"| deadline rush, submit -> verdict stored | {r['rush_p50']:.0f} ms | {r['rush_p95']:.0f} ms | {total} |",
            "",
            f"All {total} posted within {r['posted_s']:.1f} s of the first, the last one "
            + (
                f"{r['posted_before_due_s']:.1f} s before the due time"
                if r["posted_before_due_s"] >= 0
                else f"{-r['posted_before_due_s']:.1f} s after the due time (the web server fell behind the schedule)"
            )
            + f" ({r['before_due']} of {total} rows created before it, so {r['learners_on_time']} learners on "
            f"time); drained (last verdict stored) {r['drain_s']:.1f} s after the first POST, "
            f"{r['after_due_s']:.1f} s after the due time. {r['graded_once']} of {total} graded, each claimed once "
            f"and graded once (none lost, none twice); {r['cells_right']} of {r['learners']} gradebook cells and "
            f"totals exactly as expected under the hard close ({r['per_learner']} attempts each, full points "
            "if and only if a submission was made before the due time).",
            "",
        ]
    return "\n".join(lines) + "\n" + render_gradebook(figures, options)


def load_text(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.1f}" for value in load)


def render_gradebook(figures: dict[str, Any], options: argparse.Namespace, *, alone: bool = False) -> str:
    """The gradebook's paragraph and table; `alone` (a --skip-rush run) says when and at what load."""
    when = f" (measured alone, {datetime.now(UTC):%Y-%m-%d %H:%M UTC}, {machine()} at the end)" if alone else ""
    lines = [
        f"{GRADEBOOK_MARK}{when}: {options.learners} learners x 30 items (3 assignments of 10 exercises), a score "
        "in every cell, 10% late; the page (all learners on one page, each cell a link with the counting time) and "
        "the CSV through Django's test client as the course owner, 15 requests after 2 warm-ups. Target p50 < "
        "300 ms.",
        "",
        "| database | page p50 | page p95 | page size | CSV p50 | CSV p95 | CSV size |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, g in figures["gradebook"].items():
        lines.append(
            f"| {label} | {g['page_p50']:.0f} ms | {g['page_p95']:.0f} ms | {g['page_kib']:.0f} KiB | "
            f"{g['csv_p50']:.0f} ms | {g['csv_p95']:.0f} ms | {g['csv_kib']:.0f} KiB |"
        )
    lines.append("")
    return "\n".join(lines)


def current_section(path: Path = BENCHMARKS_MD) -> str | None:
    """The Courses section of docs/benchmarks.md as it stands, or None."""
    content = path.read_text() if path.exists() else ""
    bounds = section_bounds(content, SECTION)
    return None if bounds is None else content[bounds[0] : bounds[1]]


def with_gradebook(section: str | None, block: str) -> str:
    """The Courses section with its gradebook figures (the paragraph that starts with **Gradebook** and the
    table after it) replaced by `block`; everything else, the last deadline rush and any notes, kept.

    A section without gradebook figures gets `block` at its end; no section, a new one.
    """
    if section is None:
        return f"{SECTION}\n\n{PREAMBLE}\n\n{block}"
    start = section.find(GRADEBOOK_MARK)
    if start == -1:
        return section.rstrip("\n") + "\n\n" + block
    table = section.find("\n|", start)
    end = -1 if table == -1 else section.find("\n\n", table + 1)
    rest = "" if end == -1 else section[end + 1 :]
    return section[:start] + block.rstrip("\n") + "\n" + rest


if __name__ == "__main__":
    main()
