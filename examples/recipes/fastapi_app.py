"""A FastAPI endpoint that upserts a contact with AsyncHubSpot: the event loop keeps serving
other requests while HubSpot answers, and a client that hangs up cancels the upsert.

The token comes from ``HUBSPOT_ACCESS_TOKEN``, the address from ``HUBSPOT_BASE_URL`` (HubSpot's
own when unset). Run it with ``uvicorn fastapi_app:app``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from hubspot_upsert import AsyncHubSpot, HubSpotError, ValidationError


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client for the app: a connection pool shared by every request.
    async with AsyncHubSpot(timeout=5, deadline=10) as hubspot:
        app.state.hubspot = hubspot
        yield


app = FastAPI(lifespan=lifespan)


class Contact(BaseModel):
    email: str
    first_name: str | None = None
    last_name: str | None = None


@app.post("/contacts")
async def upsert_contact(contact: Contact, request: Request) -> dict[str, object]:
    hubspot: AsyncHubSpot = request.app.state.hubspot
    properties = {"firstname": contact.first_name, "lastname": contact.last_name}
    try:
        result = await hubspot.create_or_update(contact.email, properties)
    except ValidationError as e:
        detail = [{"property": f.name, "code": f.code, "message": f.message} for f in e.errors]
        raise HTTPException(status_code=422, detail=detail) from None
    except ValueError as e:  # refused before sending: a malformed address, say
        raise HTTPException(status_code=422, detail=str(e)) from None
    except HubSpotError as e:
        raise HTTPException(status_code=502, detail=f"HubSpot: {e}") from None
    return {"vid": result.vid, "is_new": result.is_new}


@app.get("/health")
async def health() -> dict[str, bool]:
    return {"ok": True}
