"""The recipe's outbox, as an app declares it (examples/recipes/django_app.py)."""

from django_app import OutboxRow


class HubSpotOutbox(OutboxRow):
    pass
