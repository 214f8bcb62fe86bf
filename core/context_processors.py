from django.conf import settings
from django.http import HttpRequest


def branding(request: HttpRequest) -> dict:
    return {"BROKER_NAME": settings.BROKER_NAME}
