from django.apps import AppConfig


class ProjectConfig(AppConfig):
    name = "project"

    def ready(self) -> None:
        import django_app
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save

        post_save.connect(django_app.on_user_saved, sender=get_user_model())
