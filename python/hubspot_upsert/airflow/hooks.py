"""The ``hubspot`` connection type and the hook that makes a client of it."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from .. import HubSpot, OAuth

#: The OAuth app's fields, kept in the connection's extras.
APP_FIELDS = ("client_id", "client_secret", "refresh_token")


class HubSpotHook(BaseHook):  # type: ignore[misc]
    """A :class:`~hubspot_upsert.HubSpot` client from an Airflow connection.

    The connection's password is the access token (a service key or private app token); its
    host is empty for HubSpot's own address, or a full ``https://...`` address (a proxy, a
    FakeHubSpot). An OAuth app puts ``client_id``, ``client_secret`` and ``refresh_token`` in the
    extras instead of a token: the client refreshes its access tokens as a long run goes.
    Connections of type ``http`` with the same fields work too. ``client_options`` go to
    :class:`~hubspot_upsert.HubSpot` (``timeout``, ``deadline``, ``rate_limit``, ...).
    """

    conn_name_attr = "hubspot_conn_id"
    default_conn_name = "hubspot_default"
    conn_type = "hubspot"
    hook_name = "HubSpot"

    def __init__(self, hubspot_conn_id: str = default_conn_name, **client_options: Any) -> None:
        super().__init__()
        self.hubspot_conn_id = hubspot_conn_id
        self.client_options = client_options

    def get_conn(self) -> HubSpot:
        """A new client (make it inside the task: a client is never pickled into XCom)."""
        conn = self.get_connection(self.hubspot_conn_id)
        host = (conn.host or "").strip()
        if host and "://" not in host:
            host = f"https://{host}" + (f":{conn.port}" if conn.port else "")
        extra = conn.extra_dejson
        app = [extra.get(name) or extra.get(f"extra__hubspot__{name}") for name in APP_FIELDS]
        options = {"base_url": host or None, **self.client_options}
        if all(app):
            return HubSpot(oauth=OAuth(*app), **options)
        if any(app):
            missing = [name for name, value in zip(APP_FIELDS, app, strict=True) if not value]
            raise ValueError(
                f"connection {self.hubspot_conn_id!r}: an OAuth app needs {', '.join(APP_FIELDS)}"
                f" in its extras; {', '.join(missing)} missing"
            )
        if not conn.password:
            raise ValueError(
                f"connection {self.hubspot_conn_id!r} has no access token: put a service key or "
                "private app token in its password, or an OAuth app in its extras"
            )
        return HubSpot(conn.password, **options)

    def test_connection(self) -> tuple[bool, str]:
        """Reads the contacts' property definitions: the token, the address and the scope in
        one request."""
        try:
            with self.get_conn() as hs:
                hs.check_many([])
        except Exception as e:  # Airflow shows the message
            return False, str(e)
        return True, "HubSpot answered"
