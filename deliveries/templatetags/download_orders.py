"""`{% download_as_options as options %}`: the choices of the basket page's "Download as…" form
(the basket app knows nothing of download orders; its page includes their form)."""
from django import template

from deliveries import conversions
from deliveries.downloadorders.pages import RENDITION_CHOICES

register = template.Library()


@register.simple_tag
def download_as_options() -> dict:
    return {"renditions": RENDITION_CHOICES, "formats": list(conversions.IMAGE_FORMATS)}
