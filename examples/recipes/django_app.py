"""Keep HubSpot in step with Django's users through an outbox: each saved user becomes a row in
the same transaction, and a background drainer upserts the rows and deletes those that landed.

What it guarantees: a user saved in a committed transaction reaches HubSpot, or stays in the
outbox with HubSpot's reason for refusing it. A HubSpot stall, a deploy, a killed worker lose
nothing: rows not sent, or sent with no answer, are tried again later (with growing pauses) by
whichever process drains next; an upsert sent twice lands once. A rolled-back save leaves no
row. Nothing touches HubSpot inside a request: the request only writes its row.

Settings (or environment variables of the same names):

- ``HUBSPOT_ACCESS_TOKEN``: a Service Key or private app token with
  ``crm.objects.contacts.write``;
- ``HUBSPOT_BASE_URL`` (optional): a proxy, a regional host, or a FakeHubSpot in tests;
- ``HUBSPOT_OUTBOX_MODEL``: the outbox model, ``"app_label.ModelName"``;
- ``HUBSPOT_OUTBOX_RETRY_SECONDS`` (30): the first pause before a row is tried again, doubled
  each time up to an hour;
- ``HUBSPOT_OUTBOX_LEASE_SECONDS`` (60): how long a drainer holds the rows it took; longer than
  an upsert's deadline (10 s), so that two drainers do not send the same rows.

Wire it up:

    # models.py of your app (then makemigrations)
    from django_app import OutboxRow
    class HubSpotOutbox(OutboxRow):
        pass

    # AppConfig.ready()
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_save
    import django_app
    post_save.connect(django_app.on_user_saved, sender=get_user_model())

Each commit wakes this process's drainer; rows due later are drained by a timer, and by
``drain_all()``, which a cron job, a Celery beat or a management command can call to pick up
what stopped processes left. The contact gets HubSpot's standard ``firstname`` and
``lastname`` only, so it works on any portal; add properties to ``contact_properties`` once they
exist in HubSpot. An async view can upsert directly with :func:`async_hubspot`. Under gunicorn
``--preload`` the clients, the queue and the timers are made per worker process, on first use.
"""

from __future__ import annotations

import datetime
import logging
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import models

from hubspot_upsert import AsyncHubSpot, HubSpot, HubSpotError

log = logging.getLogger(__name__)

#: A HubSpot stall must not hold the drainer forever: each drain gives up after this long and
#: leaves its rows for later.
DEADLINE = 10.0
#: Rows one drain takes (HubSpot upserts them 100 a request).
DRAIN_ROWS = 500
#: Outcomes of records that did not reach HubSpot, or whose answer never came: tried again.
RETRY_CODES = {"NOT_SENT", "UNANSWERED"}

_lock = threading.Lock()
_made: dict[tuple[str, int], Any] = {}


class OutboxRow(models.Model):
    """One upsert waiting for HubSpot. Subclass it in your app's models.py."""

    email = models.CharField(max_length=254)
    properties = models.JSONField(default=dict)
    created = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_try = models.DateTimeField(db_index=True)
    #: The drainer holding the row, until ``claimed_until``.
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_until = models.DateTimeField(null=True, blank=True)
    #: HubSpot's code and message when it refused the record: kept for a person, not retried.
    refused = models.TextField(blank=True, default="")

    class Meta:
        abstract = True


def _setting(name: str, default: Any = None) -> Any:
    from django.conf import settings

    return getattr(settings, name, None) or os.environ.get(name) or default


def outbox() -> Any:
    from django.apps import apps

    return apps.get_model(_setting("HUBSPOT_OUTBOX_MODEL"))


def _per_process(key: str, make: Any) -> Any:
    """One object per process: after a fork the child makes its own."""
    with _lock:
        slot = (key, os.getpid())
        if slot not in _made:
            _made[slot] = make()
        return _made[slot]


def _from_settings(kind: type[Any]) -> Any:
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
    """This process's drainer: one thread, so drains never overlap within a process."""
    return _per_process(
        "queue", lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="hubspot-outbox")
    )


def contact_properties(user: Any) -> dict[str, Any]:
    return {"firstname": user.first_name or None, "lastname": user.last_name or None}


def on_user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` receiver: writes the outbox row in the save's own transaction (a rollback
    takes it back), and wakes the drainer once the transaction commits."""
    if not instance.email:
        return
    from django.db import transaction
    from django.utils import timezone

    outbox().objects.create(
        email=instance.email, properties=contact_properties(instance), next_try=timezone.now()
    )
    transaction.on_commit(wake)


def wake() -> None:
    queue().submit(_drain_logged)


def _drain_logged() -> None:
    try:
        drain_all()
    except Exception:
        log.exception("the HubSpot outbox could not be drained; its rows wait for the next try")


def drain_all() -> dict[str, int]:
    """Drains every row that is due, then sets a timer for the next one due."""
    totals = {"landed": 0, "retry": 0, "refused": 0}
    while True:
        counts = drain()
        for key, n in counts.items():
            totals[key] += n
        if sum(counts.values()) < DRAIN_ROWS or counts["retry"]:
            break
    _schedule_next()
    return totals


def drain() -> dict[str, int]:
    """Takes up to DRAIN_ROWS due rows, upserts them, and settles each: landed rows are
    deleted, refused ones keep HubSpot's reason, the others wait for their next try."""
    from django.db.models import Q
    from django.utils import timezone

    model = outbox()
    now = timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = model.objects.filter(free, refused="", next_try__lte=now).order_by("pk")
    ids = list(due.values_list("pk", flat=True)[:DRAIN_ROWS])
    token = uuid.uuid4().hex
    lease = datetime.timedelta(seconds=float(_setting("HUBSPOT_OUTBOX_LEASE_SECONDS", 60)))
    # Taking the rows is one UPDATE: of two drainers, each gets only rows the other has not.
    model.objects.filter(free, pk__in=ids).update(claim=token, claimed_until=now + lease)
    rows = list(model.objects.filter(claim=token).order_by("pk"))
    counts = {"landed": 0, "retry": 0, "refused": 0}
    if not rows:
        return counts
    records = [{"email": row.email, **row.properties} for row in rows]
    stopped = False
    try:
        result = hubspot().create_or_update_many(records, keep="failures")
    except HubSpotError as e:
        # The run stopped (HubSpot down past the deadline, the token refused): every record
        # has its outcome in the partial result, if there is one; those of the batch HubSpot
        # failed on carry no code of HubSpot's own.
        log.warning("HubSpot outbox: the drain stopped: %s", e)
        result, stopped = getattr(e, "bulk_result", None), True
    failures = {f.index: f for f in result.failures} if result is not None else None
    landed, retry = [], []
    for index, row in enumerate(rows):
        failure = failures.get(index) if failures is not None else None
        if failures is not None and failure is None:
            landed.append(row.pk)
        elif failure is None or failure.code in RETRY_CODES or (stopped and not failure.code):
            retry.append(row)
        else:
            row.refused = f"{failure.code}: {failure.message}"[:2000]
            row.claim, row.claimed_until = "", None
            row.save(update_fields=["refused", "claim", "claimed_until"])
            log.warning("HubSpot refused %s: %s", row.email, row.refused)
            counts["refused"] += 1
    model.objects.filter(pk__in=landed, claim=token).delete()
    counts["landed"] = len(landed)
    first = float(_setting("HUBSPOT_OUTBOX_RETRY_SECONDS", 30))
    for row in retry:
        row.attempts += 1
        pause = min(first * 2 ** (row.attempts - 1), 3600.0)
        row.next_try = timezone.now() + datetime.timedelta(seconds=pause)
        row.claim, row.claimed_until = "", None
        row.save(update_fields=["attempts", "next_try", "claim", "claimed_until"])
    counts["retry"] = len(retry)
    if retry:
        log.warning("HubSpot outbox: %d rows wait for another try", len(retry))
    return counts


def _schedule_next() -> None:
    """One timer per process, for the next row due (rows refused never are; a row another
    drainer holds is due when its lease ends)."""
    from django.utils import timezone

    row = outbox().objects.filter(refused="").order_by("next_try").first()
    if row is None:
        return
    due = max(row.next_try, row.claimed_until or row.next_try)
    wait = max((due - timezone.now()).total_seconds(), 0.0) + 0.1
    with _lock:
        slot = ("timer", os.getpid())
        previous = _made.get(slot)
        if previous is not None:
            previous.cancel()
        timer = _made[slot] = threading.Timer(wait, wake)
    timer.daemon = True
    timer.start()
