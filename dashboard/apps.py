from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """Staff and instructor tools: the dashboard, the learner's progress page and content export."""

    name = "dashboard"
    verbose_name = "Dashboard"
