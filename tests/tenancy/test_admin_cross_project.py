"""Walks every admin console URL as project B's staff ADMIN and checks that nothing of
project A is shown or changed (issue 11, item 3).

Project A's rows are made by the API harness' providers (tests/<app>/cross_project.py) plus
a user who belongs to A only. For every registered model the walk opens the changelist (with
each list filter, and filters naming A's rows), the add form, A's rows' change, history and
delete pages, posts changes, deletions and every action on A's rows, and asks every
autocomplete endpoint; then A's rows must be unchanged and no page may have named them.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path

import pytest
from django.contrib import admin
from django.db import models
from django.test import Client
from django.urls import reverse

from portal.tenancy.models import ApiToken, Membership, Project, Role, TenantModel, User
from tests.conftest import make_member
from tests.cross_project import PROVIDERS, HarnessContext
from tests.tenancy.test_cross_project import tenant_snapshot

TESTS_DIR = Path(__file__).resolve().parents[1]
for provider_module in sorted(TESTS_DIR.glob("*/cross_project.py")):
    importlib.import_module(f"tests.{provider_module.parent.name}.cross_project")

MARKER = "SECRET-OF-PROJECT-A"
A_ONLY_EMAIL = "only-in-alpha@secret-a.example.org"


def _a_rows(model, alpha) -> list:
    """Primary keys of `model`'s rows that belong to project A."""
    if model is Project:
        return [alpha.pk]
    if model is User:
        return list(User.objects.filter(memberships__project=alpha).exclude(
            memberships__project__slug="beta").values_list("pk", flat=True))
    if issubclass(model, TenantModel):
        return list(model.unscoped_objects.filter(project=alpha).values_list("pk", flat=True))
    if any(f.name == "project" for f in model._meta.get_fields()):
        return list(model._default_manager.filter(project=alpha).values_list("pk", flat=True))
    return []


def _snapshot(alpha) -> str:
    digest = hashlib.sha256(tenant_snapshot(alpha).encode())
    for model in (Membership, ApiToken):
        rows = list(model.objects.filter(project=alpha).order_by("pk").values())
        digest.update(json.dumps(rows, sort_keys=True, default=str).encode())
    digest.update(json.dumps(list(Project.objects.filter(pk=alpha.pk).values()), default=str).encode())
    users = User.objects.filter(memberships__project=alpha).order_by("pk").values()
    digest.update(json.dumps(list(users), sort_keys=True, default=str).encode())
    return digest.hexdigest()


@pytest.fixture
def alpha_world(two_projects):
    alpha, beta = two_projects
    alpha.label = f"Alpha {MARKER}"
    alpha.save()
    ctx = HarnessContext(project=alpha, owner=make_member(alpha), admin=make_member(alpha, Role.ADMIN),
                         marker=MARKER)
    for name in sorted(PROVIDERS):
        PROVIDERS[name](ctx)
    make_member(alpha, email=A_ONLY_EMAIL)
    intruder = make_member(beta, Role.ADMIN)
    intruder.user.is_staff = True
    intruder.user.save()
    make_member(beta, email="member-of-beta@example.org")
    client = Client()
    client.force_login(intruder.user)
    return alpha, beta, client


def _no_trace_of_a(response, where: str) -> None:
    assert response.status_code < 500, f"{where}: {response.status_code}"
    body = response.content
    for secret in (MARKER, A_ONLY_EMAIL, "alpha"):
        if secret not in where:  # a search term is echoed back in the search box
            assert secret.encode() not in body, f"{where} shows {secret!r} (project A)"


def registered():
    return [pytest.param(model, id=model._meta.label) for model in admin.site._registry]


def test_every_registered_model_is_walked():
    labels = {model._meta.label for model in admin.site._registry}
    assert {"tenancy.Membership", "tenancy.ApiToken", "orders.Order", "deliveries.Delivery",
            "catalog.DataFile", "basket.Basket"} <= labels


@pytest.mark.parametrize("model", registered())
def test_another_projects_admin_sees_and_changes_nothing_of_project_a(alpha_world, model):
    alpha, beta, client = alpha_world
    model_admin = admin.site._registry[model]
    opts = model._meta
    info = opts.app_label, opts.model_name
    a_rows = _a_rows(model, alpha)
    before = _snapshot(alpha)

    changelist = reverse("admin:%s_%s_changelist" % info)
    response = client.get(changelist)
    _no_trace_of_a(response, f"GET {changelist}")
    # Every filter's choices, and querystrings that name project A or its rows.
    queries = [f"?project__id__exact={alpha.pk}", f"?project={alpha.pk}", "?q=alpha", f"?q={MARKER}",
               "?o=1", "?all="]
    if a_rows:
        queries.append(f"?id__exact={a_rows[0]}")
    for entry in model_admin.list_filter:
        name = entry[0] if isinstance(entry, (tuple, list)) else entry
        if isinstance(name, str):
            field = opts.get_field(name.split("__")[0])
            if field.is_relation:
                queries.append(f"?{name}__id__exact={alpha.pk if field.related_model is Project else 1}")
    for query in queries:
        _no_trace_of_a(client.get(changelist + query), f"GET {changelist}{query}")

    add = reverse("admin:%s_%s_add" % info)
    response = client.get(add)
    _no_trace_of_a(response, f"GET {add}")
    client.post(add, {"project": alpha.pk, "user": 1, "email": A_ONLY_EMAIL, "role": Role.ADMIN,
                      "label": MARKER, "slug": "gamma"})

    for pk in a_rows:
        for view in ("change", "history", "delete"):
            url = reverse(f"admin:%s_%s_{view}" % info, args=[pk])
            response = client.get(url)
            _no_trace_of_a(response, f"GET {url}")
            assert response.status_code in (302, 403, 404), f"GET {url}: {response.status_code}"
        change = reverse("admin:%s_%s_change" % info, args=[pk])
        client.post(change, {"role": Role.REGISTERED_USER, "label": "changed", "project": beta.pk,
                             "email": "x@y.org", "is_superuser": "on", "is_staff": "on"})
        client.post(reverse("admin:%s_%s_delete" % info, args=[pk]), {"post": "yes"})
        if model is User:
            password = f"/admin/tenancy/user/{pk}/password/"
            _no_trace_of_a(client.get(password), f"GET {password}")
            client.post(password, {"password1": "new-pass-word-123", "password2": "new-pass-word-123"})

    # Every action, on A's rows.
    if a_rows:
        for action in model_admin.get_actions(_request_of(client, changelist)):
            response = client.post(changelist, {"action": action, "_selected_action": [str(pk) for pk in a_rows],
                                                "post": "yes", "index": 0})
            _no_trace_of_a(response, f"action {action} on {changelist}")

    # Every autocomplete lookup that starts from this model's relations.
    for field in opts.get_fields():
        if isinstance(field, (models.ForeignKey, models.ManyToManyField, models.OneToOneField)):
            for term in ("", "a", "alpha", MARKER, A_ONLY_EMAIL):
                url = (f"/admin/autocomplete/?app_label={opts.app_label}&model_name={opts.model_name}"
                       f"&field_name={field.name}&term={term}")
                _no_trace_of_a(client.get(url), f"GET {url}")

    assert _snapshot(alpha) == before, f"{opts.label}: project A's rows changed through the console"
    assert not Membership.objects.filter(user__email=A_ONLY_EMAIL, project=beta).exists()


def _request_of(client, path):
    """A request carrying the client's user, for ModelAdmin.get_actions."""
    from django.contrib.auth import get_user
    from django.test import RequestFactory

    request = RequestFactory().get(path)
    request.session = client.session
    request.user = get_user(request)
    return request


def test_the_index_and_app_pages_show_nothing_of_project_a(alpha_world):
    alpha, beta, client = alpha_world
    for url in ["/admin/", *{f"/admin/{m._meta.app_label}/" for m in admin.site._registry}]:
        _no_trace_of_a(client.get(url), f"GET {url}")


def test_adding_a_member_goes_by_email_not_by_picking_a_user(alpha_world):
    alpha, beta, client = alpha_world
    a_only = User.objects.get(email=A_ONLY_EMAIL)
    form = client.get("/admin/tenancy/membership/add/")
    assert b'name="email"' in form.content and b'name="user"' not in form.content

    # Posting an A-only user's id does nothing...
    client.post("/admin/tenancy/membership/add/", {"user": a_only.pk, "project": beta.pk, "role": Role.ADMIN})
    assert not Membership.objects.filter(user=a_only, project=beta).exists()
    # ...nor does inviting anyone into project A...
    client.post("/admin/tenancy/membership/add/", {"email": "new@example.org", "project": alpha.pk,
                                                   "role": Role.ADMIN})
    assert not Membership.objects.filter(user__email="new@example.org").exists()
    # ...while inviting by e-mail into B works (creating the account when needed).
    response = client.post("/admin/tenancy/membership/add/", {"email": "New@Example.org", "project": beta.pk,
                                                              "role": Role.REGISTERED_USER})
    assert response.status_code == 302
    assert Membership.objects.filter(user__email="new@example.org", project=beta).exists()


def test_the_project_filter_lists_only_the_admins_projects(alpha_world):
    alpha, beta, client = alpha_world
    for url in ["/admin/tenancy/membership/", "/admin/tenancy/apitoken/", "/admin/orders/order/",
                "/admin/deliveries/delivery/", "/admin/basket/basket/", "/admin/orders/orderdatafile/"]:
        response = client.get(url)
        assert response.status_code == 200
        assert f"project__id__exact={alpha.pk}".encode() not in response.content, url


def test_superusers_still_see_every_project(alpha_world, django_user_model):
    root = django_user_model.objects.create_superuser(email="root@example.org", password="x")
    client = Client()
    client.force_login(root)
    assert A_ONLY_EMAIL.encode() in client.get("/admin/tenancy/membership/").content
    assert A_ONLY_EMAIL.encode() in client.get("/admin/tenancy/user/").content


