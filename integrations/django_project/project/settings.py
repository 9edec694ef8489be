"""A minimal Django project around the recipe in examples/recipes/django_app.py."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "examples" / "recipes"))

SECRET_KEY = "integration-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "project.apps.ProjectConfig",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB", str(ROOT / "integrations" / "django.sqlite3")),
    }
}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The recipe's settings: here from the environment, as a deployment would set them.
HUBSPOT_ACCESS_TOKEN = os.environ.get("HUBSPOT_ACCESS_TOKEN")
HUBSPOT_BASE_URL = os.environ.get("HUBSPOT_BASE_URL")
HUBSPOT_OUTBOX_MODEL = "project.HubSpotOutbox"
# Short pauses, so that the tests see rows tried again within seconds; the lease stays longer
# than an upsert's deadline (10 s), as the recipe asks.
HUBSPOT_OUTBOX_RETRY_SECONDS = 1
HUBSPOT_OUTBOX_LEASE_SECONDS = 12
# Loggers that exist when Django configures logging (hubspot_upsert's among them) stay enabled:
# dictConfig disables them unless told otherwise.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django_app": {"handlers": ["stderr"], "level": "INFO"}},
}
