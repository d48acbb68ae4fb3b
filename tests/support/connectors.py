"""What the « Paramétrage des connecteurs » form sends for one connector."""

from __future__ import annotations


def connector_form(connector, **changes) -> dict:
    """The connector's fields as the page shows them (the key left blank: kept), with ``changes`` typed over them."""
    data = {
        f"c{connector.pk}-name": connector.name,
        f"c{connector.pk}-url": connector.url,
        f"c{connector.pk}-timeout_seconds": connector.timeout_seconds,
        f"c{connector.pk}-api_key": "",
    }
    data.update({f"c{connector.pk}-{key}": value for key, value in changes.items()})
    return data
