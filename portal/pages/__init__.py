"""The shared part of the people-facing pages: base layout, login, the project list and a
project's home, `project_page` (project from the URL, membership, scope) and how domain errors
show on a page. Each app owns its own pages (`basket/pages.py`, `orders/pages.py`,
`portal/catalog/pages.py`) with templates under `templates/<app>/`."""
from .home import home

__all__ = ["home"]
