"""Keep HubSpot in step with Django's users: each saved user is upserted as a contact after the
transaction commits, on a small background queue, never inside the request.

Settings (or the environment variables of the same names):

- ``HUBSPOT_ACCESS_TOKEN``: a Service Key or private app token with ``crm.objects.contacts.write``;
- ``HUBSPOT_BASE_URL`` (optional): a proxy, a regional host, or a FakeHubSpot in tests.

The contact gets HubSpot's standard properties ``email``, ``firstname`` and ``lastname`` only,
so it works on any portal. To send more, create the properties in HubSpot first (Settings >
Properties; a date property ``signup_date``, say) and add them to ``contact_properties``.

Wire it up in your ``AppConfig.ready()``::

    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_save
    from . import hubspot_sync
    post_save.connect(hubspot_sync.on_user_saved, sender=get_user_model())

An async view can upsert directly with :func:`async_hubspot`, which never blocks the loop.
Under gunicorn ``--preload`` the clients and the queue are made per worker process, on first
use: nothing made in the parent is used after the fork.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from hubspot_upsert import AsyncHubSpot, HubSpot, HubSpotError

log = logging.getLogger(__name__)

#: A HubSpot stall must not hold a worker: each upsert gives up after this many seconds.
DEADLINE = 10.0

_lock = threading.Lock()
_made: dict[tuple[str, int], Any] = {}


def _setting(name: str) -> str | None:
    from django.conf import settings

    return getattr(settings, name, None) or os.environ.get(name) or None


def _per_process(key: str, make: Any) -> Any:
    """One object per process: after a fork the child makes its own."""
    with _lock:
        slot = (key, os.getpid())
        if slot not in _made:
            _made[slot] = make()
        return _made[slot]


def _from_settings(kind: type[Any]) -> Any:
    """A client of `kind` from the settings, with a short deadline."""
    return kind(
        _setting("HUBSPOT_ACCESS_TOKEN"),
        base_url=_setting("HUBSPOT_BASE_URL"),
        timeout=5,
        deadline=DEADLINE,
    )


def hubspot() -> HubSpot:
    """This process's client, made on first use from the settings."""
    return _per_process("sync", lambda: _from_settings(HubSpot))


def async_hubspot() -> AsyncHubSpot:
    """This process's async client, for async views."""
    return _per_process("async", lambda: _from_settings(AsyncHubSpot))


def queue() -> ThreadPoolExecutor:
    """The background queue: one thread, so upserts of one user stay in order."""
    return _per_process(
        "queue", lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubspot-sync")
    )


def contact_properties(user: Any) -> dict[str, Any]:
    return {"firstname": user.first_name or None, "lastname": user.last_name or None}


def sync_user(email: str, properties: dict[str, Any], pk: Any) -> None:
    try:
        hubspot().create_or_update(email, properties)
    except HubSpotError:
        log.exception("could not upsert user %s into HubSpot", pk)
    except ValueError:
        log.warning("user %s has an email HubSpot cannot take", pk)


def on_user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` receiver: queues the upsert once the transaction commits (never after a
    rollback). The values are read now, in the request's thread."""
    if not instance.email:
        return
    from django.db import transaction

    email, properties, pk = instance.email, contact_properties(instance), instance.pk
    transaction.on_commit(lambda: queue().submit(sync_user, email, properties, pk))
