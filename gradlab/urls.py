from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from grader.api import api
from gradlab import accounts

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("accounts/signup/", accounts.signup, name="signup"),
    path("accounts/login/", accounts.SiteLoginView.as_view(), name="login"),
    # Log out by POST only (Django's LogoutView): a link or a prefetch cannot log anyone out.
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("", include("quizzes.urls")),
    path("", include("grader.urls")),
    path("", include("dashboard.urls")),
]

handler400 = "gradlab.errors.bad_request"
