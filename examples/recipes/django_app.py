"""Keep HubSpot in step with a Django user model: a ``post_save`` handler that upserts the
contact once the transaction has committed.

- One module-level client, created on first use: safe to share between threads, and under
  gunicorn ``--preload`` each forked worker builds its own connections.
- The token comes from ``settings.HUBSPOT_ACCESS_TOKEN`` (or the environment).
- A HubSpot failure is logged, never raised into the request that saved the user.

Wire it up in your ``AppConfig.ready()``::

    from django.db.models.signals import post_save
    from django.contrib.auth import get_user_model
    from . import hubspot_sync
    post_save.connect(hubspot_sync.on_user_saved, sender=get_user_model())
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from hubspot_upsert import HubSpot, HubSpotError

log = logging.getLogger(__name__)

_client: HubSpot | None = None
_client_lock = threading.Lock()


def hubspot() -> HubSpot:
    """The process's client, created on first use."""
    global _client
    with _client_lock:
        if _client is None:
            try:
                from django.conf import settings

                token = getattr(settings, "HUBSPOT_ACCESS_TOKEN", None)
            except ImportError:
                token = None
            _client = HubSpot(token or os.environ.get("HUBSPOT_ACCESS_TOKEN"))
        return _client


def contact_properties(user: Any) -> dict[str, Any]:
    return {
        "firstname": user.first_name or None,
        "lastname": user.last_name or None,
        "is_customer": getattr(user, "is_customer", None),
        "signup_date": user.date_joined.date() if user.date_joined else None,
    }


def sync_user(user: Any) -> None:
    try:
        hubspot().create_or_update(user.email, contact_properties(user))
    except HubSpotError:
        log.exception("could not upsert user %s into HubSpot", user.pk)
    except ValueError:
        log.warning("user %s has an email HubSpot cannot take", user.pk)


def _django_on_commit(callback: Callable[[], None]) -> None:
    from django.db import transaction

    transaction.on_commit(callback)


#: How the handler defers to after the commit (replaceable in tests).
on_commit: Callable[[Callable[[], None]], None] = _django_on_commit


def on_user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` receiver: upsert after the transaction commits (never for a rollback)."""
    if instance.email:
        on_commit(lambda: sync_user(instance))
