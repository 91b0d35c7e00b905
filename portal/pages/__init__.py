"""People-facing pages (`/projects/<slug>/...`): plain Django templates over the same
services and selectors as the API."""
from .home import home

__all__ = ["home"]
