"""Sign up, log in and log out, the account page, password change and reset.

Django's auth views with the site's templates (templates/registration/). Reset emails
go through Django's email backend: the console in development, SMTP configured from
the environment in production (settings.py, "Email").

Every signed-up user is a learner; the `instructor` group and staff status are given
by an administrator (see gradlab/apps.py for what the group may do).
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.contrib.auth.models import User
from django.contrib.auth.views import LoginView
from django.core.cache import cache
from django.forms.utils import ErrorList
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods


class SignupForm(UserCreationForm):
    """A username, an optional email (for password resets) and a password typed twice."""

    email = forms.EmailField(
        required=False, help_text="Optional. Only used to send you a link if you forget your password."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class AccountForm(forms.ModelForm):
    """What a learner may change on the account page."""

    class Meta:
        model = User
        fields = ("email",)
        help_texts = {"email": "Where a password-reset link is sent. Leave empty to have none."}

    def clean_email(self) -> str:
        email: str = self.cleaned_data.get("email") or ""
        taken = User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists()
        if email and taken:
            raise forms.ValidationError("Another account uses this email address.")
        return email


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
    if request.method == "POST" and not _signup_allowed(request):
        form.add_error(
            None,
            f"Too many accounts were created from your network in the last hour "
            f"(at most {settings.SIGNUPS_PER_IP_PER_HOUR}). Try again later, or ask the course staff.",
        )
        return render(
            request, "registration/signup.html", {"form": form, "next": request.POST.get("next", "")}, status=429
        )
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        # Said once on the next page: on a phone the header shows only the name, easy to miss.
        messages.success(
            request,
            f"Welcome, {user.get_username()}: your account is ready and you are signed in. "
            "What you read, answer and submit is saved to your progress from now on.",
        )
        return HttpResponseRedirect(safe_next_url(request))
    context: dict[str, Any] = {"form": form, "next": request.POST.get("next") or request.GET.get("next", "")}
    return render(request, "registration/signup.html", context)


class LoginThrottleBackend(AxesStandaloneBackend):
    """django-axes' lockout check for every log-in made by an HTTP request (the site's form, /admin/login/).

    Authentication without a request (the test client's `login()`, a shell) is no attack surface
    and is let through to the next backend instead of raising, as AxesStandaloneBackend would.
    """

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, *args, **kwargs)


SIGNUP_WINDOW_S = 3600


def _signup_allowed(request: HttpRequest) -> bool:
    """Count this sign-up attempt against the client's address; False once over the hourly limit.

    The count lives in the shared cache (Redis in production), incremented atomically, so every
    web process sees the same number. Failed attempts count too: they cost the server as much.
    """
    key = f"signups:{request.META.get('REMOTE_ADDR', '')}"
    cache.add(key, 0, timeout=SIGNUP_WINDOW_S)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=SIGNUP_WINDOW_S)
        count = 1
    return count <= settings.SIGNUPS_PER_IP_PER_HOUR


LOCKED_OUT_MESSAGE = (
    "Too many failed log-ins for this account or from your network: log-in is locked for {minutes} minutes. "
    "Try again later, or ask the course staff to unlock it."
)


def locked_out(request: HttpRequest, credentials: Any = None, *args: Any, **kwargs: Any) -> HttpResponse:
    """django-axes' lockout response (settings.AXES_LOCKOUT_CALLABLE): 429 with a sentence that says why."""
    message = LOCKED_OUT_MESSAGE.format(minutes=settings.AXES_COOLOFF_MINUTES)
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message, "code": "locked_out"}, status=429)
    if request.path.startswith("/admin/"):
        return HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    form = _LockedOutForm(request, message=message)
    return render(request, "registration/login.html", {"form": form, "next": safe_next_url(request)}, status=429)


class _LockedOutForm(AuthenticationForm):
    """The log-in form, empty, whose only error is the lockout message."""

    def __init__(self, request: HttpRequest, *, message: str) -> None:
        super().__init__(request)
        self.lockout_message = message

    def non_field_errors(self) -> ErrorList:
        return ErrorList([self.lockout_message])


class SiteLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """The account page: who you are, your email (for resets), links to change the password and to progress."""
    user = request.user
    assert isinstance(user, User)
    form = AccountForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Your email address was saved.")
        return HttpResponseRedirect(resolve_url("account"))
    return render(request, "registration/account.html", {"form": form, "account_user": user})
