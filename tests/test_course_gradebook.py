"""The gradebook of a small course with every kind of cell: its page body, CSV and JSON, cell for cell,
and the learners' order under every sort and filter.

The expected texts were taken from the gradebook before its rows were rebuilt for speed (bench/
bench_courses.py), so they pin that the rebuild shows the same thing: points to 2 decimals, the
override, late and hint marks, the counting time in UTC to the second, escaped names, empty cells.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from courses import selectors
from courses.models import Assignment, AssignmentItem, ItemKind, ItemScore
from courses.templatetags.gradebook import gradebook_rows
from tests.course_helpers import enroll, make_course, make_exercise

pytestmark = pytest.mark.django_db

OPENS = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def book(instructor: User) -> dict[str, Any]:
    """A course of four learners (one with no work at all) and three items in two assignments.

    Returns the course and the ids the page's links use: learners by username, items i1, i2, i3.
    """
    course = make_course(instructor, slug="gb-101")
    learners = {
        "ada": User.objects.create_user("ada", "ada@example.org", first_name="Ada", last_name="<Lovelace>"),
        "bob": User.objects.create_user("bob", "=bob@example.org", first_name="", last_name=""),
        "carol": User.objects.create_user("carol", "carol@example.org", first_name="Carol", last_name="Ann"),
        "dave": User.objects.create_user("dave", "dave@example.org", first_name="Dave & Co", last_name=""),
    }
    enroll(course, *learners.values())
    first = Assignment.objects.create(
        course=course, title="Week <1>", opens_at=OPENS, due_at=datetime(2027, 3, 1, 17, 0, tzinfo=UTC)
    )
    second = Assignment.objects.create(
        course=course,
        title="Week 2",
        opens_at=OPENS,
        due_at=datetime(2027, 3, 8, 17, 0, tzinfo=UTC),
        hint_penalty_percent=10,
    )

    def item(assignment: Assignment, order: int, slug: str, points: float) -> AssignmentItem:
        return AssignmentItem.objects.create(
            assignment=assignment, order=order, kind=ItemKind.EXERCISE, exercise=make_exercise(slug), points=points
        )

    items = {
        "i1": item(first, 0, "linear-backward", 10),
        "i2": item(first, 1, "relu-backward", 2.5),
        "i3": item(second, 0, "softmax-backward", 5),
    }

    def score(learner: str, item_key: str, points: float | None, at: datetime | None, **extra: Any) -> None:
        ItemScore.objects.create(
            item=items[item_key],
            learner=learners[learner],
            computed_points=extra.pop("computed_points", points),
            points=points,
            counted_at=at,
            attempts=extra.pop("attempts", 1),
            **extra,
        )

    score("ada", "i1", 7.5, datetime(2027, 3, 2, 9, 15, 42, 500000, tzinfo=UTC), is_late=True, late_days=1)
    score(
        "ada",
        "i2",
        2.0,
        datetime(2027, 2, 28, 23, 5, 0, tzinfo=UTC),
        computed_points=1.25,
        override_points=2.0,
        override_reason="Regraded by hand",
    )
    score("ada", "i3", 4.0, datetime(2027, 3, 8, 16, 59, 59, 999999, tzinfo=UTC), hints_charged=2, hint_penalty=1.0)
    score("bob", "i1", 10.0, datetime(2027, 3, 1, 8, 0, 0, tzinfo=UTC), attempts=3)
    score("bob", "i2", None, None, attempts=2)
    score(
        "bob",
        "i3",
        3.0,
        datetime(2027, 3, 9, 1, 2, 3, tzinfo=UTC),
        computed_points=2.5,
        override_points=3.0,
        is_late=True,
        late_days=1,
        hints_charged=1,
    )
    score("dave", "i1", 10 / 3, datetime(2027, 3, 1, 16, 59, 59, 999999, tzinfo=UTC))
    score("dave", "i3", 0.0, datetime(2027, 3, 10, 0, 0, 0, tzinfo=UTC), is_late=True, late_days=2)
    ids = {name: user.pk for name, user in learners.items()} | {key: row.pk for key, row in items.items()}
    return {"course": course, "ids": ids, "assignments": (first, second)}


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _body(page: str) -> str:
    return page.split("<tbody>", 1)[1].split("</tbody>", 1)[0].strip()


def _order(page: str) -> list[str]:
    return [cell.split("<", 1)[0].strip() for cell in _body(page).split('<th scope="row">')[1:]]


def test_the_page_shows_every_kind_of_cell_as_before(instructor: User, book: dict[str, Any]) -> None:
    page = _client(instructor).get(reverse("gradebook", args=[book["course"].slug])).content.decode()
    i = book["ids"]
    late = ' <span class="chip v-wrong_answer">late</span>'
    pencil = ' <span class="chip" title="overridden">✎</span>'
    expected = (
        f'<tr><th scope="row">ada <span class="muted">Ada &lt;Lovelace&gt;</span></th>'
        f'<td class="num is-late"><a href="{i["ada"]}/{i["i1"]}/">7.5</a>{late}'
        '<time datetime="2027-03-02T09:15:42Z">03-02 09:15</time></td>'
        f'<td class="num"><a href="{i["ada"]}/{i["i2"]}/">2</a>{pencil}'
        '<time datetime="2027-02-28T23:05:00Z">02-28 23:05</time></td>'
        f'<td class="num"><a href="{i["ada"]}/{i["i3"]}/">4</a> <span class="chip hint-mark" '
        'title="2 hint(s) revealed before the counted submission, -1 points">hint&times;2</span>'
        '<time datetime="2027-03-08T16:59:59Z">03-08 16:59</time></td>'
        '<td class="num total">13.5</td></tr>'
        '<tr><th scope="row">bob</th>'
        f'<td class="num"><a href="{i["bob"]}/{i["i1"]}/">10</a>'
        '<time datetime="2027-03-01T08:00:00Z">03-01 08:00</time></td>'
        f'<td class="num"><a href="{i["bob"]}/{i["i2"]}/">&ndash;</a></td>'
        f'<td class="num"><a href="{i["bob"]}/{i["i3"]}/">3</a>{pencil} <span class="chip hint-mark" '
        'title="1 hint(s) revealed before the counted submission">hint&times;1</span>'
        '<time datetime="2027-03-09T01:02:03Z">03-09 01:02</time></td>'
        '<td class="num total">13</td></tr>'
        '<tr><th scope="row">carol <span class="muted">Carol Ann</span></th>'
        f'<td class="num"><a href="{i["carol"]}/{i["i1"]}/">&ndash;</a></td>'
        f'<td class="num"><a href="{i["carol"]}/{i["i2"]}/">&ndash;</a></td>'
        f'<td class="num"><a href="{i["carol"]}/{i["i3"]}/">&ndash;</a></td>'
        '<td class="num total">0</td></tr>'
        '<tr><th scope="row">dave <span class="muted">Dave &amp; Co</span></th>'
        f'<td class="num"><a href="{i["dave"]}/{i["i1"]}/">3.33</a>'
        '<time datetime="2027-03-01T16:59:59Z">03-01 16:59</time></td>'
        f'<td class="num"><a href="{i["dave"]}/{i["i2"]}/">&ndash;</a></td>'
        f'<td class="num is-late"><a href="{i["dave"]}/{i["i3"]}/">0</a>{late}'
        '<time datetime="2027-03-10T00:00:00Z">03-10 00:00</time></td>'
        '<td class="num total">3.33</td></tr>'
    )
    assert _body(page) == expected
    assert "4 learners \u00d7 3 items." in page
    assert 'title="Week &lt;1&gt;"' in page
    head = page.split("<thead>", 1)[1].split("</thead>", 1)[0].split()
    assert " ".join(head) == (
        '<tr> <th scope="col"><a href="?assignment=&amp;sort=-name">Learner</a></th> '
        f'<th scope="col" class="num" title="Week &lt;1&gt;"><a href="?assignment=&amp;sort=item:{i["i1"]}"><span '
        'class="col-assignment">Week &lt;1&gt;</span>Linear '
        'Backward</a><span class="muted col-points">10</span></th><th scope="col" class="num" '
        f'title="Week &lt;1&gt;"><a href="?assignment=&amp;sort=item:{i["i2"]}"><span class="col-assignment">Week '
        "&lt;1&gt;</span>Relu Backward</a><span "
        'class="muted col-points">2.50</span></th><th scope="col" class="num" title="Week 2"><a '
        f'href="?assignment=&amp;sort=item:{i["i3"]}"><span class="col-assignment">Week 2</span>Softmax Backward</a><span class="muted '
        'col-points">5</span></th> <th scope="col" class="num"><a href="?assignment=&amp;sort=-total">Total</a><span '
        'class="muted col-points">17.50</span></th> </tr>'
    )


def test_the_csv_has_every_cell_as_before(instructor: User, book: dict[str, Any]) -> None:
    body = _client(instructor).get(reverse("gradebook_csv", args=[book["course"].slug])).content.decode()
    i = book["ids"]
    assert body == (
        "Student,ID,SIS User ID,SIS Login ID,Section,Username,Email address,"
        "Week <1>: Linear Backward (10),Week <1>: Relu Backward (2.5),Week 2: Softmax Backward (5),Total (17.5)\r\n"
        f"Ada <Lovelace>,{i['ada']},,ada,gb-101,ada,ada@example.org,7.5,2,4,13.5\r\n"
        f"bob,{i['bob']},,bob,gb-101,bob,'=bob@example.org,10,,3,13\r\n"
        f"Carol Ann,{i['carol']},,carol,gb-101,carol,carol@example.org,,,,0\r\n"
        f"Dave & Co,{i['dave']},,dave,gb-101,dave,dave@example.org,3.33,,0,3.33\r\n"
    )
    assert len(list(csv.reader(io.StringIO(body)))) == 5


def test_the_json_has_every_cell_as_before(instructor: User, book: dict[str, Any]) -> None:
    client = _client(instructor)
    data = client.get(f"/api/courses/{book['course'].slug}/gradebook").json()
    assert [row["username"] for row in data["learners"]] == ["ada", "bob", "carol", "dave"]
    ada, bob, carol, dave = data["learners"]
    assert (ada["total"], ada["late_items"], bob["total"], bob["late_items"]) == (13.5, 1, 13.0, 0)
    assert carol["cells"] == [None, None, None]
    assert ada["cells"][0] == {
        "points": 7.5,
        "computed_points": 7.5,
        "overridden": False,
        "counted_at": "2027-03-02T09:15:42Z",
        "submission_id": None,
        "late": True,
        "late_days": 1,
        "attempts": 1,
        "hints_charged": 0,
        "hint_penalty": 0.0,
    }
    assert bob["cells"][1] == {
        "points": None,
        "computed_points": None,
        "overridden": False,
        "counted_at": None,
        "submission_id": None,
        "late": False,
        "late_days": 0,
        "attempts": 2,
        "hints_charged": 0,
        "hint_penalty": 0.0,
    }
    assert bob["cells"][2]["overridden"] is True and bob["cells"][2]["computed_points"] == 2.5
    assert (dave["cells"][0]["points"], dave["cells"][1], dave["total"]) == (pytest.approx(10 / 3), None, 3.3333)
    assert [item["points"] for item in data["items"]] == [10.0, 2.5, 5.0]


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ({}, ["ada", "bob", "carol", "dave"]),
        ({"sort": "-name"}, ["dave", "carol", "bob", "ada"]),
        ({"sort": "total"}, ["carol", "dave", "bob", "ada"]),
        ({"sort": "-total"}, ["ada", "bob", "dave", "carol"]),
        ({"sort": "late"}, ["bob", "carol", "ada", "dave"]),
        ({"sort": "-late"}, ["dave", "ada", "carol", "bob"]),
        ({"sort": "item:i1"}, ["carol", "dave", "ada", "bob"]),
        ({"sort": "-item:i1"}, ["bob", "ada", "dave", "carol"]),
        ({"sort": "item:i2"}, ["carol", "dave", "bob", "ada"]),
        ({"sort": "-item:i3"}, ["ada", "bob", "dave", "carol"]),
        ({"sort": "item:0"}, ["ada", "bob", "carol", "dave"]),
        ({"sort": "nonsense"}, ["ada", "bob", "carol", "dave"]),
        ({"q": "LOVE"}, ["ada"]),
        ({"q": "example.org", "sort": "-total"}, ["ada", "bob", "dave", "carol"]),
        ({"late": "1"}, ["ada", "dave"]),
        ({"late": "1", "assignment": "first"}, ["ada"]),
        ({"assignment": "second", "sort": "-total"}, ["ada", "bob", "dave", "carol"]),
    ],
)
def test_sorts_and_filters_order_the_learners_as_before(
    instructor: User, book: dict[str, Any], query: dict[str, str], order: list[str]
) -> None:
    i = book["ids"]
    first, second = book["assignments"]
    query = dict(query)
    if "sort" in query and "item:" in query["sort"]:
        key = query["sort"].rsplit(":", 1)[1]
        query["sort"] = query["sort"].replace(key, str(i.get(key, key)))
    if "assignment" in query:
        query["assignment"] = str({"first": first, "second": second}[query["assignment"]].pk)
    client = _client(instructor)
    page = client.get(reverse("gradebook", args=[book["course"].slug]), query).content.decode()
    assert _order(page) == order
    rows = list(
        csv.reader(
            io.StringIO(client.get(reverse("gradebook_csv", args=[book["course"].slug]), query).content.decode())
        )
    )
    assert [row[5] for row in rows[1:]] == order


def test_one_assignment_shows_only_its_columns(instructor: User, book: dict[str, Any]) -> None:
    second = book["assignments"][1]
    page = _client(instructor).get(reverse("gradebook", args=[book["course"].slug]), {"assignment": second.pk})
    text = page.content.decode()
    i = book["ids"]
    assert "4 learners \u00d7 1 item." in text
    assert f'href="{i["ada"]}/{i["i3"]}/"' in text and f'href="{i["ada"]}/{i["i1"]}/"' not in text
    assert '<td class="num total">4</td>' in text


def test_the_gradebook_reads_three_queries_and_its_cells_and_columns_need_no_more(
    book: dict[str, Any], django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(3):  # items with their assignments and exercises, learners, scores
        gradebook = selectors.gradebook(book["course"])
        rows = gradebook_rows(gradebook)
        text = selectors.gradebook_csv(gradebook)
        headers = [(column.header, column.item.slug(), column.assignment.due_at) for column in gradebook.columns]
    assert rows.count("<tr>") == 4 and text.count("\r\n") == 5
    assert headers[2] == ("Week 2: Softmax Backward", "softmax-backward", datetime(2027, 3, 8, 17, 0, tzinfo=UTC))


def test_a_second_click_on_a_column_reverses_its_order(instructor: User, book: dict[str, Any]) -> None:
    """Each header links to its ascending sort, and to the descending one when that column is the sort."""
    i = book["ids"]
    url = reverse("gradebook", args=[book["course"].slug])
    client = _client(instructor)
    unsorted = client.get(url).content.decode()
    assert f'sort=item:{i["i1"]}">' in unsorted and f'sort=-item:{i["i1"]}">' not in unsorted
    ascending = client.get(url, {"sort": f"item:{i['i1']}"}).content.decode()
    assert f'sort=-item:{i["i1"]}">' in ascending
    assert f'sort=item:{i["i2"]}">' in ascending  # the other columns still start ascending
    descending = client.get(url, {"sort": f"-item:{i['i1']}"}).content.decode()
    assert f'sort=item:{i["i1"]}">' in descending
    assert _order(ascending) == list(reversed(_order(descending)))


def test_the_pages_json_export_is_the_apis_with_the_pages_filters(instructor: User, book: dict[str, Any]) -> None:
    slug = book["course"].slug
    client = _client(instructor)
    page = client.get(reverse("gradebook", args=[slug]), {"late": "1", "sort": "-total"}).content.decode()
    assert f'href="{reverse("gradebook_json", args=[slug])}?late=1&amp;sort=-total" download' in page
    response = client.get(reverse("gradebook_json", args=[slug]))
    assert response["Content-Disposition"] == f'attachment; filename="{slug}-gradebook.json"'
    assert response.json() == client.get(f"/api/courses/{slug}/gradebook").json()
    late = client.get(reverse("gradebook_json", args=[slug]), {"late": "1", "sort": "-total"}).json()
    assert [row["username"] for row in late["learners"]] == ["ada", "dave"]  # as the page and the CSV list them
    assert [row["total"] for row in late["learners"]] == [13.5, 3.3333]


def test_columns_name_their_assignment_when_the_gradebook_shows_several(instructor: User, book: dict[str, Any]) -> None:
    url = reverse("gradebook", args=[book["course"].slug])
    client = _client(instructor)
    head = client.get(url).content.decode().split("<tbody>")[0]
    # Week <1> has two items and Week 2 one; the titles are escaped.
    assert head.count('<span class="col-assignment">Week &lt;1&gt;</span>') == 2
    assert head.count('<span class="col-assignment">Week 2</span>') == 1
    one = client.get(url, {"assignment": book["assignments"][1].pk}).content.decode().split("<tbody>")[0]
    assert "col-assignment" not in one  # one assignment: the filter above names it
