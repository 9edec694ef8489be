"""Airflow 3 provider: the ``hubspot`` connection type, :class:`~.hooks.HubSpotHook` (a client
from a connection) and :class:`~.operators.HubSpotUpsertOperator` (a file, a DataFrame or an
upstream task's records into HubSpot).

Airflow finds it through the package's ``apache_airflow_provider`` entry point once
``hubspot-upsert`` is installed beside it; importing this module does not import Airflow.
"""

from __future__ import annotations

from typing import Any


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads: the package, its connection type and that
    type's form (declared here, so the UI needs no import of the hook)."""
    return {
        "package-name": "hubspot-upsert",
        "name": "HubSpot upsert",
        "description": "Creates or updates HubSpot contacts, companies, deals and custom objects "
        "from files, DataFrames and upstream tasks.",
        "connection-types": [
            {
                "connection-type": "hubspot",
                "hook-class-name": "hubspot_upsert.airflow.hooks.HubSpotHook",
                "hook-name": "HubSpot",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "login", "port"],
                    "relabeling": {"password": "Access token", "host": "Address"},
                    "placeholders": {
                        "password": "a service key or private app token; empty for an OAuth app",
                        "host": "empty for HubSpot's own; https://... for a proxy",
                    },
                },
                "conn-fields": {
                    "client_id": _field("OAuth app: client id"),
                    "client_secret": _field("OAuth app: client secret", secret=True),
                    "refresh_token": _field("OAuth app: refresh token", secret=True),
                },
            }
        ],
    }


def _field(label: str, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {
        "label": label,
        "description": "for an OAuth app instead of an access token: all three, or none",
        "schema": schema,
    }
