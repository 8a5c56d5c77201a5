from django.urls import path

from lessons import views

urlpatterns = [
    path("", views.home, name="home"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="lesson_detail"),
    path("progress/", views.progress, name="progress"),
]
