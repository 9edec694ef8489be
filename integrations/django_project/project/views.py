"""Views that exercise the recipe: a sync sign-up (the upsert goes to the background queue after
commit) and an async subscribe view that upserts with AsyncHubSpot."""

import json
import os

import django_app
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse


def signup(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body)
    with transaction.atomic():
        user = get_user_model().objects.create(
            username=data["email"], email=data["email"], first_name=data.get("first_name", "")
        )
    return JsonResponse({"id": user.pk, "pid": os.getpid()}, status=201)


async def subscribe(request: HttpRequest) -> HttpResponse:
    data = json.loads(request.body)
    result = await django_app.async_hubspot().create_or_update(
        data["email"], {"firstname": data.get("first_name")}
    )
    return JsonResponse({"vid": result.vid, "is_new": result.is_new})
