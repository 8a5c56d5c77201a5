from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from courses.api import install as install_courses_api
from grader.api import api
from gradlab import accounts

install_courses_api(api)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", accounts.SiteLoginView.as_view(), name="login"),
    # Log out by POST only (Django's LogoutView): a link or a prefetch cannot log anyone out.
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/", accounts.account, name="account"),
    path("accounts/password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("accounts/password/change/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("accounts/password/reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include("lessons.urls")),
    path("", include("quizzes.urls")),
    path("", include("grader.urls")),
    path("", include("dashboard.urls")),
    path("", include("lti.urls")),
    path("", include("courses.urls")),
]

handler400 = "gradlab.errors.bad_request"
