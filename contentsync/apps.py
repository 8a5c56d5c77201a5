from django.apps import AppConfig


class ContentsyncConfig(AppConfig):
    name = "contentsync"
    verbose_name = "Content import and export"
