from django.urls import path

from quizzes import views

urlpatterns = [
    path("lessons/<slug:slug>/quiz/", views.quiz_page, name="quiz_page"),
]
