"""The ``hubspot-upsert`` command: a CSV or JSON Lines file of contacts into HubSpot.

Every input row ends in one of two places: landed at HubSpot, or in the failures file with its
original content and the reason, whatever stops the run.

Exit status: 0 when every record landed, 1 when some failed, 2 for usage and set-up errors
(missing token, unreadable file, unknown column), 3 when the run failed (HubSpot or the network
beyond the retries), 130 for SIGINT (Ctrl-C) and 143 for SIGTERM.
"""

from __future__ import annotations

from ._run import main

__all__ = ["main"]
