from django.urls import path

from quizzes import quiz_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="lesson_detail"),
    path("lessons/<slug:slug>/quiz/", quiz_views.quiz_page, name="quiz_page"),
]
