from django.urls import path

from courses import views

urlpatterns = [
    path("courses/", views.course_list, name="course_list"),
    path("courses/new/", views.course_create, name="course_create"),
    path("courses/join/", views.course_join, name="course_join"),
    path("courses/invite/<str:token>/", views.course_invite, name="course_invite"),
    path("courses/<slug:slug>/", views.course_detail, name="course_detail"),
    path("courses/<slug:slug>/assignments/new/", views.assignment_create, name="assignment_create"),
    path("courses/<slug:slug>/assignments/<int:assignment_id>/", views.assignment_detail, name="assignment_detail"),
    path(
        "courses/<slug:slug>/assignments/<int:assignment_id>/extensions/",
        views.extension_grant,
        name="extension_grant",
    ),
    path("courses/<slug:slug>/assignments/<int:assignment_id>/edit/", views.assignment_edit, name="assignment_edit"),
    path("courses/<slug:slug>/assignments/<int:assignment_id>/regrade/", views.regrade_start, name="regrade_start"),
    path("courses/<slug:slug>/regrades/<int:job_id>/", views.regrade_detail, name="regrade_detail"),
    path("courses/<slug:slug>/gradebook/", views.gradebook, name="gradebook"),
    path("courses/<slug:slug>/gradebook.csv", views.gradebook_csv, name="gradebook_csv"),
    path("courses/<slug:slug>/gradebook.json", views.gradebook_json, name="gradebook_json"),
    path(
        # Relative to the gradebook page, so each of its cells links with a short "<learner>/<item>/".
        "courses/<slug:slug>/gradebook/<int:learner_id>/<int:item_id>/",
        views.learner_item,
        name="learner_item",
    ),
    path("courses/<slug:slug>/roster/", views.roster, name="course_roster"),
    path("courses/<slug:slug>/audit/", views.audit_log, name="audit_log"),
]
