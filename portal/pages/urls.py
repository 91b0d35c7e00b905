from django.urls import path

from .home import project_home

urlpatterns = [
    path("projects/<slug:slug>/", project_home, name="page-project"),
]
