from django.urls import path

from grader import views

urlpatterns = [
    path("exercises/", views.exercise_list, name="exercise_list"),
    path("exercises/<slug:slug>/", views.exercise_detail, name="exercise_detail"),
    path("exercises/<slug:slug>/hints/", views.exercise_hint, name="exercise_hint"),
    path("exercises/<slug:slug>/run/", views.exercise_run, name="exercise_run"),
    path("runs/<int:run_id>/", views.example_run_progress, name="example_run_progress"),
    path("submissions/<int:submission_id>/", views.submission_detail, name="submission_detail"),
    path("submissions/<int:submission_id>/progress/", views.submission_progress, name="submission_progress"),
]
