"""Course pages: access for learner, other learner, instructor and TAs; joining; roster; gradebook; overrides."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from courses.models import (
    Course,
    Enrollment,
    GradeChange,
    GradeChangeCause,
    ItemScore,
    RosterInvitation,
)
from courses.selectors import csv_safe
from tests.conftest import PASSWORD
from tests.course_helpers import enroll, graded_submission, make_assignment, make_course, make_exercise, make_ta

pytestmark = pytest.mark.django_db


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def course(instructor: User, learner: User) -> Course:
    course = make_course(instructor)
    enroll(course, learner)
    return course


@pytest.fixture
def graded(course: Course, learner: User, django_capture_on_commit_callbacks: Any) -> Any:
    exercise = make_exercise()
    due = timezone.now() - timedelta(hours=1)
    assignment = make_assignment(course, [exercise], due_at=due)
    with django_capture_on_commit_callbacks(execute=True):
        graded_submission(learner, exercise, at=due - timedelta(minutes=10), score=0.5)
        graded_submission(learner, exercise, at=due + timedelta(minutes=10), score=1.0)
    return assignment


def _staff_pages(course: Course, assignment: Any, learner: User) -> list[str]:
    item = assignment.items.get()
    return [
        reverse("gradebook", args=[course.slug]),
        reverse("gradebook_csv", args=[course.slug]),
        reverse("gradebook_json", args=[course.slug]),
        reverse("course_roster", args=[course.slug]),
        reverse("audit_log", args=[course.slug]),
        reverse("learner_item", args=[course.slug, learner.pk, item.pk]),
    ]


def test_every_course_page_renders_for_its_instructor(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    client = _client(instructor)
    pages = [
        reverse("course_list"),
        reverse("course_detail", args=[course.slug]),
        graded.get_absolute_url(),
        *_staff_pages(course, graded, learner),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
    assert client.get(reverse("course_detail", args=[course.slug])).content.count(course.join_code.encode()) >= 1


def test_a_learner_sees_their_assignment_with_what_counts_but_no_staff_page(
    learner: User, course: Course, graded: Any
) -> None:
    client = _client(learner)
    page = client.get(graded.get_absolute_url())
    assert page.status_code == 200
    text = page.content.decode()
    assert "Your best submission for each item counts" in text
    assert "still counts in full, marked late" in text
    assert "late 1 d" in text
    assert course.join_code not in client.get(reverse("course_detail", args=[course.slug])).content.decode()
    for url in _staff_pages(course, graded, learner):
        assert client.get(url).status_code == 403, url


def test_another_learner_and_another_courses_ta_get_404_everywhere(
    other_learner: User, learner: User, course: Course, graded: Any
) -> None:
    ta_elsewhere = User.objects.create_user("tom", password=PASSWORD)
    make_ta(make_course(User.objects.create_user("owen", password=PASSWORD), slug="other-course"), ta_elsewhere)
    for user in (other_learner, ta_elsewhere):
        client = _client(user)
        for url in [reverse("course_detail", args=[course.slug]), graded.get_absolute_url()]:
            assert client.get(url).status_code == 404, (user, url)
        for url in _staff_pages(course, graded, learner):
            assert client.get(url).status_code == 404, (user, url)


def test_a_ta_of_the_course_reads_the_gradebook_but_cannot_create_assignments(
    learner: User, course: Course, graded: Any
) -> None:
    ta = User.objects.create_user("tara", password=PASSWORD)
    make_ta(course, ta)
    client = _client(ta)
    assert client.get(reverse("gradebook", args=[course.slug])).status_code == 200
    response = client.post(reverse("assignment_create", args=[course.slug]), {"title": "x"})
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_log_in(course: Course) -> None:
    response = Client().get(reverse("gradebook", args=[course.slug]))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_a_learner_joins_with_the_code_and_a_wrong_code_says_so(other_learner: User, course: Course) -> None:
    client = _client(other_learner)
    response = client.post(reverse("course_join"), {"code": "WRONG123"}, follow=True)
    assert "No course has that join code" in response.content.decode()
    assert not Enrollment.objects.filter(user=other_learner).exists()
    response = client.post(reverse("course_join"), {"code": course.join_code.lower()}, follow=True)
    assert response.status_code == 200
    assert Enrollment.objects.filter(user=other_learner, course=course).exists()


def test_work_done_inside_the_window_before_joining_counts_once_the_learner_joins(
    instructor: User, other_learner: User, course: Course, django_capture_on_commit_callbacks: Any
) -> None:
    """A learner who solved an assignment's exercise (after it opened) and then joins, by code or by the
    roster, sees the points at once: not a dash until the next submission or a regrade."""
    exercise = make_exercise()
    assignment = make_assignment(course, [exercise])
    late_joiner = User.objects.create_user("lin", email="lin@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        for user in (other_learner, late_joiner):
            graded_submission(user, exercise, at=timezone.now() - timedelta(hours=2), score=1.0)
    client = _client(other_learner)
    client.post(reverse("course_join"), {"code": course.join_code})
    page = client.get(assignment.get_absolute_url()).content.decode()
    assert "10 / 10" in page
    assert "\u2013 / 10" not in page
    _client(instructor).post(
        reverse("course_roster", args=[course.slug]),
        {"roster": SimpleUploadedFile("roster.csv", b"lin\n", content_type="text/csv")},
    )
    rows = list(
        csv.DictReader(
            io.StringIO(_client(instructor).get(reverse("gradebook_csv", args=[course.slug])).content.decode())
        )
    )
    totals = {row["Username"]: row[next(key for key in row if key.startswith("Total"))] for row in rows}
    assert totals["grace"] == "10" and totals["lin"] == "10"
    change = GradeChange.objects.get(learner=late_joiner)
    assert change.cause == GradeChangeCause.RECOMPUTE and "before joining" in change.reason


def test_an_ended_course_takes_nobody_new(other_learner: User, course: Course) -> None:
    Course.objects.filter(pk=course.pk).update(ended_at=timezone.now() - timedelta(days=1))
    response = _client(other_learner).post(reverse("course_join"), {"code": course.join_code}, follow=True)
    assert "has ended" in response.content.decode()
    assert not Enrollment.objects.filter(user=other_learner).exists()


def test_the_invite_link_enrolls_after_login(other_learner: User, course: Course) -> None:
    url = reverse("course_invite", args=[course.invite_token])
    assert "Sign up" in Client().get(url).content.decode()
    client = _client(other_learner)
    assert client.get(url).status_code == 200
    client.post(url)
    assert Enrollment.objects.filter(user=other_learner, course=course, source="invite_link").exists()


def test_a_roster_enrolls_accounts_and_invites_new_addresses(
    instructor: User, other_learner: User, course: Course
) -> None:
    roster = "email\ngrace@example.com\nnew.person@example.org\nada\n"
    response = _client(instructor).post(
        reverse("course_roster", args=[course.slug]),
        {"roster": SimpleUploadedFile("roster.csv", roster.encode(), content_type="text/csv")},
    )
    assert response.status_code == 200
    assert "Enrolled 1; already enrolled 1; invited 1." in response.content.decode()
    assert Enrollment.objects.filter(user=other_learner, course=course, source="roster").exists()
    invitation = RosterInvitation.objects.get(course=course)
    assert invitation.email == "new.person@example.org"
    newcomer = User.objects.create_user("newbie", password=PASSWORD)
    _client(newcomer).post(reverse("course_invite", args=[invitation.token]))
    assert Enrollment.objects.filter(user=newcomer, course=course).exists()
    newcomer.refresh_from_db()
    assert newcomer.email == "new.person@example.org"


def test_a_roster_says_which_rows_changed_nothing_and_why(
    instructor: User, learner: User, other_learner: User, course: Course
) -> None:
    # grace twice (by address, then by username), an invitee twice in two spellings, the owner of the course.
    roster = "grace@example.com\nnew@example.org\ngrace\nNEW@example.org\nines\n"
    upload = SimpleUploadedFile("roster.csv", roster.encode(), content_type="text/csv")
    response = _client(instructor).post(reverse("course_roster", args=[course.slug]), {"roster": upload})
    text = response.content.decode()
    assert "Enrolled 1; already enrolled 0; invited 1." in text
    skipped = text.split('data-testid="roster-skipped">')[1].split("</ul>")[0]
    assert "line 3: grace is the same person as line 1, listed once" in skipped
    assert "line 4: NEW@example.org is the same person as line 2, listed once" in skipped
    assert "line 5: ines is on the course&#x27;s staff, not enrolled" in skipped
    assert RosterInvitation.objects.filter(course=course).count() == 1
    assert not Enrollment.objects.filter(user=instructor).exists()
    # The same file again: nothing new, and the invitation is the one sent before.
    upload = SimpleUploadedFile("roster.csv", roster.encode(), content_type="text/csv")
    text = _client(instructor).post(reverse("course_roster", args=[course.slug]), {"roster": upload}).content.decode()
    assert "Enrolled 0; already enrolled 1; invited 1 (1 of them invited before: same link)." in text


def test_a_roster_with_a_bad_row_changes_nothing_and_names_the_line(
    instructor: User, other_learner: User, course: Course
) -> None:
    roster = "grace\nnobody-here\nnot-an-email@\n"
    response = _client(instructor).post(
        reverse("course_roster", args=[course.slug]),
        {"roster": SimpleUploadedFile("roster.csv", roster.encode(), content_type="text/csv")},
    )
    text = response.content.decode()
    assert "line 2: there is no account &#x27;nobody-here&#x27;" in text
    assert "line 3" in text
    assert not Enrollment.objects.filter(user=other_learner).exists()


def test_the_gradebook_shows_points_late_flags_and_links_to_the_learners_work(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    page = _client(instructor).get(reverse("gradebook", args=[course.slug]))
    text = page.content.decode()
    item = graded.items.get()
    assert f'href="{learner.pk}/{item.pk}/"' in text
    assert "is-late" in text
    assert ">10<" in text  # the late accepted submission counts in full under the 'none' policy
    work = _client(instructor).get(reverse("learner_item", args=[course.slug, learner.pk, item.pk])).content.decode()
    assert "def f(x)" in work
    assert "<strong>counts</strong>" in work


def test_the_gradebook_filters_and_sorts(
    instructor: User, learner: User, other_learner: User, course: Course, graded: Any
) -> None:
    enroll(course, other_learner)
    client = _client(instructor)
    url = reverse("gradebook", args=[course.slug])
    assert "grace" not in client.get(url, {"late": "1"}).content.decode()
    assert "ada" not in client.get(url, {"q": "grac"}).content.decode()
    text = client.get(url, {"sort": "-total"}).content.decode()
    assert text.index(">ada") < text.index(">grace")
    text = client.get(url, {"sort": "total"}).content.decode()
    assert text.index(">grace") < text.index(">ada")


def test_the_gradebook_page_takes_the_same_queries_for_more_learners(
    instructor: User, course: Course, graded: Any, django_assert_max_num_queries: Any
) -> None:
    client = _client(instructor)
    url = reverse("gradebook", args=[course.slug])
    client.get(url)
    for n in range(20):
        enroll(course, User.objects.create_user(f"learner{n}"))
    with django_assert_max_num_queries(14):
        assert client.get(url).status_code == 200


def test_an_override_from_the_cell_page_needs_a_reason_and_lands_in_the_audit_log(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    item = graded.items.get()
    url = reverse("learner_item", args=[course.slug, learner.pk, item.pk])
    client = _client(instructor)
    response = client.post(url, {"points": "7", "reason": ""}, follow=True)
    assert "Give a reason" in response.content.decode()
    assert ItemScore.objects.get(learner=learner).points == 10.0
    client.post(url, {"points": "7", "reason": "Copied from a classmate"})
    assert ItemScore.objects.get(learner=learner).points == 7.0
    audit = client.get(reverse("audit_log", args=[course.slug])).content.decode()
    assert "Copied from a classmate" in audit
    assert GradeChange.objects.filter(cause=GradeChangeCause.OVERRIDE, changed_by=instructor).count() == 1


def test_the_csv_has_one_row_per_learner_in_canvas_and_moodle_columns(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    learner.first_name = "=HYPERLINK(1)"
    learner.save()
    body = _client(instructor).get(reverse("gradebook_csv", args=[course.slug])).content.decode()
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:7] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Username", "Email address"]
    assert rows[0][-1] == "Total (10)"
    assert len(rows) == 2
    assert rows[1][0] == "'=HYPERLINK(1)"
    assert rows[1][-2:] == ["10", "10"]


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_start_like_a_formula_get_a_quote(value: str) -> None:
    assert csv_safe(value) == "'" + value
    assert csv_safe("plain") == "plain"


def test_the_home_page_lists_my_courses_and_due_assignments(learner: User, course: Course, graded: Any) -> None:
    text = _client(learner).get(reverse("home")).content.decode()
    assert "My courses" in text
    assert graded.title in text
    assert "data-local-time" in text
    assert "My courses" not in _client(User.objects.create_user("solo")).get(reverse("home")).content.decode()


def test_an_instructor_creates_an_assignment_from_the_course_page(instructor: User, course: Course) -> None:
    make_exercise()
    client = _client(instructor)
    response = client.post(
        reverse("assignment_create", args=[course.slug]),
        {
            "title": "Week 1",
            "opens_at": "2027-03-01T09:00",
            "due_at": "2027-03-08T17:00",
            "tz_offset": "60",
            "late_policy": "hard_close",
            "counting": "last",
            "item_1": "exercise:linear-backward",
            "points_1": "5",
        },
    )
    assignment = course.assignments.get()
    assert response["Location"] == assignment.get_absolute_url()
    assert assignment.due_at.isoformat() == "2027-03-08T16:00:00+00:00"
    refused = {
        "title": "Week 2 draft",
        "opens_at": "2027-03-08T09:00",
        "due_at": "2027-03-01T17:00",
        "late_policy": "penalty_per_day",
        "late_penalty_percent": "25",
        "counting": "last",
        "hint_penalty_percent": "5",
        "item_1": "exercise:linear-backward",
        "points_1": "7.5",
    }
    response = client.post(reverse("assignment_create", args=[course.slug]), refused)
    assert course.assignments.count() == 1
    # The course page again, with the reason beside the form and every entry as it was sent.
    assert response.status_code == 400
    page = response.content.decode()
    form = page[page.index('id="new-assignment-title"') :]
    assert "The due time must be after the open time." in form.split("</form>")[0]
    for name in ("title", "opens_at", "due_at", "late_penalty_percent", "hint_penalty_percent", "points_1"):
        assert f'name="{name}"' in form and f'value="{refused[name]}"' in form, name
    for value in ("penalty_per_day", "last", "exercise:linear-backward"):
        assert f'<option value="{value}" selected>' in form, value
    assert form.count(" selected>") == 3  # the other item rows stay empty


def test_a_refused_new_course_keeps_what_was_typed(instructor: User, course: Course) -> None:
    sent = {"title": "Deep learning, spring", "slug": course.slug, "term": "Spring 2028"}
    response = _client(instructor).post(reverse("course_create"), sent)
    assert response.status_code == 409
    page = response.content.decode()
    assert escape(f"A course with the slug {course.slug!r} exists already.") in page
    for name, value in sent.items():
        assert f'name="{name}"' in page and f'value="{value}"' in page, name
    assert Course.objects.count() == 1


def test_a_refused_override_keeps_the_points_and_the_reason_typed(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    item = graded.items.get()
    url = reverse("learner_item", args=[course.slug, learner.pk, item.pk])
    client = _client(instructor)
    for sent, reason in (
        ({"points": "12", "reason": "Late bus, agreed in class"}, "Points must be between 0 and 10."),
        ({"points": "", "reason": "Late bus, agreed in class"}, "Points must be a number."),
        ({"points": "7.5", "reason": "  "}, "Give a reason for the override"),
    ):
        response = client.post(url, sent)
        # The cell page again, with the reason for the refusal beside the form and both entries kept.
        assert response.status_code == 400, sent
        page = response.content.decode()
        form = page[page.index('id="override-title"') :].split("</form>")[0]
        assert reason in form, sent
        assert f'name="points" type="number" min="0" max="10.0" step="any" value="{sent["points"]}"' in form
        assert f'maxlength="500" value="{sent["reason"]}"' in form
    assert ItemScore.objects.get(learner=learner).points == 10.0
    assert not GradeChange.objects.filter(cause=GradeChangeCause.OVERRIDE).exists()


def test_a_refused_extension_keeps_the_learner_time_and_reason_typed(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    first = User.objects.create_user("aaron")  # listed before `learner`, so the form's default choice
    enroll(course, first)
    sent = {"learner": str(learner.pk), "due_at": "2020-01-05T10:00", "tz_offset": "60", "reason": "Sick note"}
    response = _client(instructor).post(reverse("extension_grant", args=[course.slug, graded.pk]), sent)
    assert response.status_code == 400
    page = response.content.decode()
    form = page[page.index('id="ext-learner"') - 600 :].split("</form>")[0]
    assert "An extension&#x27;s due time must be after the assignment&#x27;s." in form
    assert f'<option value="{learner.pk}" selected>' in form and f'<option value="{first.pk}">' in form
    assert 'value="2020-01-05T10:00"' in form and 'value="Sick note"' in form
    assert not graded.extensions.exists()
    # A missing time is refused the same way, on the page.
    response = _client(instructor).post(
        reverse("extension_grant", args=[course.slug, graded.pk]), {**sent, "due_at": ""}
    )
    assert response.status_code == 400 and "Give the new due time." in response.content.decode()


def test_a_refused_item_is_named_by_its_row_on_the_form(instructor: User, course: Course) -> None:
    make_exercise()
    sent = {
        "title": "Week 3",
        "opens_at": "2027-03-01T09:00",
        "due_at": "2027-03-08T17:00",
        "counting": "best",
        "item_1": "",  # an empty first row: the bad item is still "Item 3", as the form labels it
        "points_1": "10",
        "item_3": "exercise:linear-backward",
        "points_3": "0",
    }
    response = _client(instructor).post(reverse("assignment_create", args=[course.slug]), sent)
    assert response.status_code == 400
    assert "Item 3: points must be more than 0" in response.content.decode()
    assert not course.assignments.exists()


def test_the_cell_page_and_audit_log_write_points_and_verdicts_as_the_gradebook_does(
    instructor: User, learner: User, course: Course, graded: Any
) -> None:
    from courses.models import RegradeJob, RegradeMode, RegradeStatus, SubmissionRegrade
    from grader.models import Submission

    item = graded.items.get()
    url = reverse("learner_item", args=[course.slug, learner.pk, item.pk])
    client = _client(instructor)
    client.post(url, {"points": "3.333333", "reason": "Partial credit"})
    first = Submission.objects.filter(user=learner).order_by("created_at").first()
    assert first is not None and first.score == 0.5 and first.verdict == "wrong_answer"
    job = RegradeJob.objects.create(assignment=graded, mode=RegradeMode.PREVIEW, status=RegradeStatus.DONE)
    SubmissionRegrade.objects.create(
        job=job,
        submission=first,
        status=RegradeStatus.DONE,
        old_verdict="wrong_answer",
        old_score=0.5,
        new_verdict="accepted",
        new_score=1.0,
    )
    page = client.get(url).content.decode()
    # A submission's score as the submission pages show it, and verdicts by their names, not their codes.
    assert "score 50%" in page and "score 0.5" not in page
    assert f"Dry run #{job.pk}: Wrong answer 50% → Accepted 100%" in page
    audit = client.get(reverse("audit_log", args=[course.slug])).content.decode()
    for text in (page, audit):
        # Points to 2 decimals, as the gradebook writes them; the exact value on hover.
        assert 'title="10.0">10</td>' in text and 'title="3.333333">3.33</td>' in text
        assert ">3.333333<" not in text and ">10.0<" not in text
