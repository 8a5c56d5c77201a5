"""Sign up, log in and log out (Django's auth views with the site's templates).

Every signed-up user is a learner; the `instructor` group and staff status are given
by an administrator (see gradlab/apps.py for what the group may do).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.contrib.auth.models import User
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods


class SignupForm(UserCreationForm):
    """A username and a password typed twice; the password validators of settings apply."""

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)


def safe_next_url(request: HttpRequest) -> str:
    """The `next` parameter when it points back into this site, else the home page."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


@sensitive_post_parameters("password1", "password2")
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Create a learner account and log it in; a bad form is shown again with its errors."""
    if request.user.is_authenticated:
        return HttpResponseRedirect(safe_next_url(request))
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return HttpResponseRedirect(safe_next_url(request))
    context: dict[str, Any] = {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}
    return render(request, "registration/signup.html", context)


class SiteLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True
