"""The project's URLs plus one view that crashes, to see what a visitor gets when code fails."""

from django.urls import path

from brokerage.urls import handler500  # noqa: F401
from brokerage.urls import urlpatterns as project_urlpatterns


def crash(request):
    raise RuntimeError("secret internals")


urlpatterns = [path("crash/", crash), *project_urlpatterns]
