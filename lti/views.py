"""LTI endpoints: /lti/login/, /lti/launch/, /lti/jwks/, /lti/deep-link/, and the staff's config page.

The login and launch are posted by the LMS (cross-site), so they are exempt from
CSRF; their protection is the OIDC state cookie, the signed id_token and its
one-time nonce (lti/launch.py). The deep-link picker is an ordinary form of the
signed-in instructor and keeps CSRF.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from pylti1p3.contrib.django import DjangoOIDCLogin
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import OIDCException
from pylti1p3.lineitem import LineItem

from courses.models import Assignment, CourseStaff
from grader.models import Exercise
from lessons.models import Lesson
from lti import services
from lti.keys import jwks as jwks_document
from lti.launch import (
    DEEP_LINKING_REQUEST,
    DEEP_LINKING_SETTINGS,
    DEPLOYMENT_ID,
    ROLES,
    GradlabMessageLaunch,
    LaunchError,
)
from lti.middleware import SESSION_KEY
from lti.models import LinkTarget, Platform
from lti.tool_config import DatabaseLaunchDataStorage, DatabaseToolConf, registration_for

logger = logging.getLogger(__name__)

DEEP_LINK_SESSION_KEY = "lti_deep_link"


def endpoint_urls(request: HttpRequest) -> dict[str, str]:
    """The absolute URLs an LMS administrator pastes into the LMS."""
    return {
        "login": request.build_absolute_uri(reverse("lti_login")),
        "launch": request.build_absolute_uri(reverse("lti_launch")),
        "jwks": request.build_absolute_uri(reverse("lti_jwks")),
        "deep_link": request.build_absolute_uri(reverse("lti_deep_link")),
    }


def refused(request: HttpRequest, error: LaunchError) -> HttpResponse:
    """The page of a refused launch: what is wrong, in words; nobody is logged in."""
    logger.info("LTI launch refused: %s", error)
    response = render(request, "lti/refused.html", {"error": error}, status=error.status)
    response["Cache-Control"] = "no-store"
    return response


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def oidc_login(request: HttpRequest) -> HttpResponse:
    """Third-party initiated login: check the platform, set the state cookie, send the browser to the LMS."""
    parameters = request.POST if request.method == "POST" else request.GET
    issuer, client_id = parameters.get("iss", ""), parameters.get("client_id", "")
    if issuer and not Platform.objects.filter(issuer=issuer, is_active=True).exists():
        return refused(
            request,
            LaunchError(
                "unknown_platform",
                f"No LMS with issuer {issuer!r} is registered in Gradlab. An administrator registers it first.",
                403,
            ),
        )
    if issuer and client_id and not Platform.objects.filter(issuer=issuer, client_id=client_id).exists():
        return refused(
            request,
            LaunchError("wrong_audience", f"The client id {client_id!r} is not registered for {issuer}.", 403),
        )
    oidc = DjangoOIDCLogin(request, DatabaseToolConf(), launch_data_storage=DatabaseLaunchDataStorage())
    try:
        response: HttpResponse = oidc.redirect(endpoint_urls(request)["launch"])
    except OIDCException as error:
        message = str(error)
        if "issuer" in message or "login hint" in message:
            message = f"The login request is incomplete ({message.lower()}): start it again from the LMS."
        return refused(request, LaunchError("bad_login", message, 400))
    return response


@csrf_exempt
@never_cache
@require_POST
def launch(request: HttpRequest) -> HttpResponse:
    """The redirect URI: validate the id_token, sign the LMS user in, and send them where the link points."""
    try:
        message_launch = GradlabMessageLaunch(request)
        message_launch.validate()
    except LaunchError as error:
        return refused(request, error)
    body = message_launch.body()
    platform = message_launch.platform
    assert platform is not None
    role = services.course_role_for(body.get(ROLES) or [])
    if role is None:
        return refused(
            request,
            LaunchError(
                "no_role",
                "Your role in this LMS course (observer, guest...) gives no access to Gradlab. Ask the instructor.",
                403,
            ),
        )
    is_deep_link = body.get("https://purl.imsglobal.org/spec/lti/claim/message_type") == DEEP_LINKING_REQUEST
    if is_deep_link and not services.is_staff_role(role):
        return refused(
            request, LaunchError("not_instructor", "Only the course's instructors can add Gradlab content.", 403)
        )
    with transaction.atomic():
        user = services.launch_account(platform, str(body["sub"]), body)
        context = services.context_link(platform, body)
        destination = _destination(
            request, platform=platform, body=body, context=context, user=user, role=role, is_deep_link=is_deep_link
        )
    if isinstance(destination, LaunchError):
        return refused(request, destination)  # a valid launch that leads nowhere: still nobody signed in
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[SESSION_KEY] = {"platform": platform.pk}
    if is_deep_link:
        request.session[DEEP_LINK_SESSION_KEY] = {
            "platform": platform.pk,
            "deployment_id": str(body[DEPLOYMENT_ID]),
            "settings": body[DEEP_LINKING_SETTINGS],
            "course": context.course_id if context else None,
        }
    return HttpResponseRedirect(destination)


def _destination(
    request: HttpRequest,
    *,
    platform: Platform,
    body: dict[str, Any],
    context: services.LtiContext | None,
    user: Any,
    role: str,
    is_deep_link: bool,
) -> str | LaunchError:
    if is_deep_link:
        if context is not None:
            services.context_course_ensure(context, user)  # where the instructor makes assignments
        return reverse("lti_deep_link")
    link = services.resource_link_record(context, body) if context is not None else None
    target = link.target if link is not None else None
    course = context.course if context is not None else None
    if target is not None and target.kind == LinkTarget.Kind.ASSIGNMENT and target.assignment is not None:
        assignment = target.assignment
        if context is not None and context.course_id is None:
            context.course = assignment.course
            context.save(update_fields=["course"])
        services.launch_enroll(assignment.course, user, role)
        return assignment.get_absolute_url()
    if course is None and context is not None and services.is_staff_role(role):
        course = services.context_course_ensure(context, user)
    if course is not None:
        services.launch_enroll(course, user, role)
    if target is not None and target.exercise is not None:
        return reverse("exercise_detail", args=[target.exercise.slug])
    if target is not None and target.lesson is not None:
        return reverse("quiz_page", args=[target.lesson.slug])
    if course is not None:
        return course.get_absolute_url()
    return LaunchError(
        "not_linked",
        "This LMS link does not point at Gradlab content yet, and the LMS course is not linked to a Gradlab "
        "course. An instructor adds the content with the LMS's 'select content' (deep linking) button.",
        404,
    )


@require_GET
def jwks(request: HttpRequest) -> JsonResponse:
    """Gradlab's public keys (current and previous), for platforms to verify what Gradlab signs."""
    response = JsonResponse(jwks_document())
    response["Cache-Control"] = "public, max-age=300"
    return response


def _picker_items(user: Any, session_data: dict[str, Any]) -> dict[str, Any]:
    staff_courses = CourseStaff.objects.filter(user=user).values_list("course_id", flat=True)
    assignments = (
        Assignment.objects.filter(course_id__in=staff_courses)
        .select_related("course")
        .order_by("course__title", "due_at")
    )
    return {
        "assignments": list(assignments),
        "exercises": list(Exercise.objects.filter(is_active=True).order_by("order", "slug")),
        "lessons": list(Lesson.objects.filter(quiz_questions__is_active=True).distinct().order_by("order", "slug")),
        "accept_multiple": str(session_data["settings"].get("accept_multiple", "true")).lower() != "false",
    }


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def deep_link(request: HttpRequest) -> HttpResponse:
    """The deep-linking picker (GET), and its answer (POST): a signed LtiDeepLinkingResponse to the LMS.

    An LMS that posts an id_token here (its content-selection URL) gets the launch itself.
    """
    if request.method == "POST" and "id_token" in request.POST:
        return launch(request)
    session_data = request.session.get(DEEP_LINK_SESSION_KEY)
    if not request.user.is_authenticated or not isinstance(session_data, dict):
        return refused(
            request,
            LaunchError(
                "no_deep_link_launch",
                "This page opens from the LMS's 'select content' button: there is no deep-linking launch in "
                "this browser session.",
                400,
            ),
        )
    if request.method == "GET":
        context = {"settings": session_data["settings"], **_picker_items(request.user, session_data)}
        return render(request, "lti/deep_link.html", context)
    return _deep_link_answer(request, session_data)


def _deep_link_answer(request: HttpRequest, session_data: dict[str, Any]) -> HttpResponse:
    # The picker's POST must carry its CSRF token (the view is exempt only for the LMS's id_token POST).
    passed = HttpResponse()
    checked = csrf_protect(lambda _request: passed)(request)
    if checked is not passed:
        return checked
    platform = Platform.objects.filter(pk=session_data["platform"], is_active=True).first()
    if platform is None:
        gone = LaunchError("unknown_platform", "The platform of this launch is no longer registered.", 403)
        return refused(request, gone)
    choices = request.POST.getlist("item")
    picker = _picker_items(request.user, session_data)
    if not choices:
        context = {"settings": session_data["settings"], "error": "Pick at least one item.", **picker}
        return render(request, "lti/deep_link.html", context, status=400)
    if not picker["accept_multiple"] and len(choices) > 1:
        context = {"settings": session_data["settings"], "error": "This LMS accepts one item here.", **picker}
        return render(request, "lti/deep_link.html", context, status=400)
    resources = []
    launch_url = endpoint_urls(request)["launch"]
    allowed_assignments = {a.pk: a for a in picker["assignments"]}
    exercises = {e.slug: e for e in picker["exercises"]}
    lessons = {lesson.slug: lesson for lesson in picker["lessons"]}
    for choice in choices:
        kind, _, key = choice.partition(":")
        resource = DeepLinkResource().set_url(launch_url)
        if kind == "assignment" and key.isdigit() and int(key) in allowed_assignments:
            assignment = allowed_assignments[int(key)]
            target = services.link_target_create(platform, kind, assignment, request.user)  # type: ignore[arg-type]
            maximum = assignment.max_points() or 1.0
            line_item = (
                LineItem()
                .set_label(assignment.title)
                .set_score_maximum(maximum)
                .set_resource_id(f"gradlab-assignment-{assignment.pk}")
                .set_tag("gradlab")
            )
            resource.set_title(assignment.title).set_lineitem(line_item)
        elif kind == "exercise" and key in exercises:
            target = services.link_target_create(platform, kind, exercises[key], request.user)  # type: ignore[arg-type]
            resource.set_title(exercises[key].title)
        elif kind == "quiz" and key in lessons:
            target = services.link_target_create(platform, kind, lessons[key], request.user)  # type: ignore[arg-type]
            resource.set_title(f"Quiz: {lessons[key].title}")
        else:
            context = {"settings": session_data["settings"], "error": f"Unknown item {choice!r}.", **picker}
            return render(request, "lti/deep_link.html", context, status=400)
        resources.append(resource.set_custom_params({"gradlab_link": target.token}))
    link = DeepLink(registration_for(platform), session_data["deployment_id"], session_data["settings"])
    token = link.get_response_jwt(resources)
    del request.session[DEEP_LINK_SESSION_KEY]
    return_url = str(session_data["settings"]["deep_link_return_url"])
    response = render(
        request,
        "lti/deep_link_return.html",
        {"return_url": return_url, "jwt": token, "count": len(resources)},
    )
    parts = urlsplit(return_url)
    response.lti_form_action = f"{parts.scheme}://{parts.netloc}"  # type: ignore[attr-defined]
    return response


@staff_member_required
def config(request: HttpRequest) -> HttpResponse:
    """What an LMS administrator pastes into Canvas or Moodle, with copy buttons, and the registered platforms."""
    platforms = Platform.objects.prefetch_related("deployments").order_by("name")
    urls = endpoint_urls(request)
    rows = [
        ("Login initiation URL", urls["login"], "Canvas: OpenID Connect Initiation Url. Moodle: Initiate login URL."),
        (
            "Redirect URIs",
            f"{urls['launch']}\n{urls['deep_link']}",
            "Both, one per line. Canvas: Redirect URIs. Moodle: Redirection URI(s).",
        ),
        ("Launch URL", urls["launch"], "Canvas: Target Link URI. Moodle: Tool URL."),
        (
            "Deep-linking URL",
            urls["deep_link"],
            "Canvas: Target Link URI of the Link Selection and Assignment Selection placements. "
            "Moodle: Content Selection URL.",
        ),
        ("Public keyset (JWKS) URL", urls["jwks"], "Canvas: Public JWK URL. Moodle: Public keyset URL."),
    ]
    return render(request, "lti/config.html", {"rows": rows, "urls": urls, "platforms": platforms})
