from django import template

from ..models import KIND_LABELS

register = template.Library()


@register.filter
def kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))
