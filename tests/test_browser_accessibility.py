"""axe-core on every page, light and dark: no serious or critical accessibility violation.

axe.min.js comes from the npm package pinned in package.json, copied by scripts/build-assets.sh
to tests/vendor/ (outside static/: no page and no collectstatic serves it). The test serves it
to Chromium on this server's origin through a Playwright route, so the site's Content Security
Policy (script-src 'self') applies unchanged. Screenshots of the workspace (desktop and phone,
light and dark) go to /tmp/gradlab-screens/.
"""

from __future__ import annotations

import html
import os
import re
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from grader.models import Exercise
from tests.conftest import unavailable
from tests.submission_helpers import graded_submission, wrong

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
pytest.importorskip("playwright.sync_api", reason="Playwright (PyPI) drives the browser")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_PATH = "/__test-only__/axe.min.js"
SHOTS = Path("/tmp/gradlab-screens")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
BLOCKING = ("serious", "critical")


@pytest.fixture
def site(transactional_db: None, engine: Any) -> dict[str, Any]:
    """All content imported; a learner with a graded wrong submission; a staff user."""
    if not AXE.exists():
        unavailable(f"{AXE} is missing: run scripts/build-assets.sh", required_by="GRADLAB_REQUIRE_BROWSER")
    call_command("import_content", stdout=StringIO(), stderr=StringIO())
    learner = User.objects.create_user("ada", "ada@example.com", "correct-horse-battery-staple")
    staff = User.objects.create_user("sam", "sam@example.com", "correct-horse-battery-staple", is_staff=True)
    staff.is_superuser = True
    staff.save()
    exercise = Exercise.objects.get(slug="linear-backward")
    code = wrong("linear-backward", "dw_transposed")
    submission = graded_submission(engine, learner, exercise, code)
    return {"learner": learner, "staff": staff, "submission": submission}


def statement_tex(html_text: str) -> list[str]:
    """The TeX of every formula in rendered Markdown, in order, as the server sent it."""
    return [
        html.unescape(tex)
        for tex in re.findall(r'<(?:span|div) class="math" data-display="\w+">(.*?)</', html_text, re.S)
    ]


def open_as(browser: Any, live_server: Any, user: User | None, viewport: dict[str, int], scheme: str) -> Any:
    context = browser.new_context(viewport=viewport, color_scheme=scheme)
    if user is not None:
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": live_server.url}])
    context.route(
        f"{live_server.url}{AXE_PATH}", lambda route: route.fulfill(path=str(AXE), content_type="text/javascript")
    )
    return context


def blocking_violations(page: Any, live_server: Any) -> list[str]:
    page.add_script_tag(url=f"{live_server.url}{AXE_PATH}")
    violations = page.evaluate(
        """async () => {
            const result = await axe.run(document, {resultTypes: ['violations']});
            return result.violations.map(v => ({
                id: v.id, impact: v.impact,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').slice(0, 160)),
            }));
        }"""
    )
    return [
        f"{item['id']} ({item['impact']}): {' | '.join(item['nodes'])}"
        for item in violations
        if item["impact"] in BLOCKING
    ]


def pages(site: dict[str, Any]) -> list[tuple[str, str, User | None]]:
    submission = site["submission"]
    return [
        ("home", "/", None),
        ("lesson", "/lessons/backpropagation/", None),
        ("quiz", "/lessons/backpropagation/quiz/", site["learner"]),
        ("exercise", "/exercises/linear-backward/", site["learner"]),
        ("submission", f"/submissions/{submission.pk}/", site["learner"]),
        ("progress", "/progress/", site["learner"]),
        ("dashboard", "/dashboard/", site["staff"]),
        ("account", "/accounts/", site["learner"]),
        ("login", "/accounts/login/", None),
        ("signup", "/accounts/signup/", None),
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_has_no_serious_or_critical_accessibility_violation(
    browser: Any, live_server: Any, site: dict[str, Any], scheme: str
) -> None:
    found: dict[str, list[str]] = {}
    for name, path, user in pages(site):
        context = open_as(browser, live_server, user, DESKTOP, scheme)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
        response = page.goto(f"{live_server.url}{path}", wait_until="networkidle")
        assert response is not None and response.status == 200, (name, response and response.status)
        if name == "exercise":
            page.wait_for_selector(".cm-editor")
        problems = blocking_violations(page, live_server)
        if problems:
            found[name] = problems
        assert errors == [], (name, errors)
        context.close()
    assert found == {}, "\n".join(f"{name}: {problem}" for name, items in found.items() for problem in items)


def test_the_axe_check_does_find_a_violation(browser: Any, live_server: Any, site: dict[str, Any]) -> None:
    """The check can fail: an image button without a name on a real page is reported as critical."""
    context = open_as(browser, live_server, None, DESKTOP, "light")
    page = context.new_page()
    page.goto(f"{live_server.url}/", wait_until="networkidle")
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<button></button>')")
    assert any(problem.startswith("button-name") for problem in blocking_violations(page, live_server))
    context.close()


def test_screenshots_of_the_workspace_desktop_and_phone_light_and_dark(
    browser: Any, live_server: Any, site: dict[str, Any]
) -> None:
    SHOTS.mkdir(exist_ok=True)
    for viewport, size in ((DESKTOP, "desktop"), (PHONE, "phone")):
        for scheme in ("light", "dark"):
            context = open_as(browser, live_server, site["learner"], viewport, scheme)
            page = context.new_page()
            page.goto(f"{live_server.url}/exercises/linear-backward/", wait_until="networkidle")
            page.wait_for_selector(".cm-editor .cm-line")
            page.wait_for_selector(".exercise-statement .katex")
            # Each formula is typeset once (two scripts ask for KaTeX at load).
            assert (
                page.locator(".exercise-statement .math .katex").count()
                == page.locator(".exercise-statement .math").count()
            )
            typeset = page.evaluate(
                """() => Array.from(document.querySelectorAll('#pane-statement > .prose .math'))
                    .map(n => n.querySelector('annotation').textContent)"""
            )
            assert typeset == statement_tex(Exercise.objects.get(slug="linear-backward").statement_html)
            # The editor's keyword colour follows the scheme (no light syntax colours on a dark background).
            keyword = page.locator(".cm-content span", has_text="import").first
            colour = keyword.evaluate("e => getComputedStyle(e).color")
            assert colour == ("rgb(169, 13, 145)" if scheme == "light" else "rgb(255, 123, 114)"), (scheme, colour)
            assert page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 1
            page.screenshot(path=str(SHOTS / f"workspace-{size}-{scheme}.png"))
            context.close()
