"""Admin console: download orders per project with their targets and delivery, the rebuild
action, and the presets editor (steps checked; a saved preset is usable by the API)."""
from deliveries.downloadorders.models import ConversionPreset, DownloadOrderEvent
from portal.tenancy.models import Role, User
from tests.factories import MembershipFactory
from tests.conftest import make_member
from tests.deliveries.test_admin import console  # noqa: F401 - a staff ADMIN of `project`, logged in

from .conftest import body, create, make_object, raw, row


def test_download_orders_are_listed_per_project_shown_and_rebuilt(console, member, other_project, run_tasks):
    obj = make_object(member.project, files=[raw("kept.bin", b"k" * 30)])
    with run_tasks():
        mine = create(member, body([obj.ip_id], name="mine to rebuild")).json()["order_id"]
    stranger = make_member(other_project)
    theirs_obj = make_object(other_project, files=[raw("theirs.bin", b"t" * 30)])
    theirs = create(stranger, body([theirs_obj.ip_id], name="theirs hidden")).json()["order_id"]

    listing = console.get("/admin/deliveries/downloadorder/")
    assert listing.status_code == 200
    assert b"mine to rebuild" in listing.content and b"theirs hidden" not in listing.content
    assert console.get(f"/admin/deliveries/downloadorder/{theirs}/change/").status_code in (302, 404)
    page = console.get(f"/admin/deliveries/downloadorder/{mine}/change/")
    assert page.status_code == 200 and obj.label.encode() in page.content and b"Completed" in page.content

    with run_tasks():
        response = console.post("/admin/deliveries/downloadorder/", {
            "action": "rebuild_download_orders", "_selected_action": [mine, theirs]})
    assert response.status_code == 302
    assert row(mine).status == "Completed" and row(theirs).status == "Pending"
    assert list(DownloadOrderEvent.unscoped_objects.filter(download_order_id=mine)
                .values_list("to_status", flat=True)) == ["Pending", "Processing", "Completed", "Pending",
                                                          "Processing", "Completed"]


def test_presets_are_edited_with_checked_steps_and_used_by_the_api(console, member):
    bad = console.post("/admin/deliveries/conversionpreset/add/", {
        "project": member.project.pk, "name": "web", "description": "",
        "steps": '[{"type": "fileExtension", "value": "bmp"}]'})
    assert bad.status_code == 200 and b"bmp" in bad.content and not ConversionPreset.unscoped_objects.exists()
    good = console.post("/admin/deliveries/conversionpreset/add/", {
        "project": member.project.pk, "name": "web", "description": "jpeg at 1024 px",
        "steps": '[{"type": "fileExtension", "value": "jpg"}, {"type": "resize", "value": {"width": 1024}}]'})
    assert good.status_code == 302
    assert ConversionPreset.unscoped_objects.get(name="web").steps[0] == {"type": "fileExtension", "value": "jpeg"}
    obj = make_object(member.project, files=[raw("a.png", b"p" * 10)])
    response = create(member, body([obj.ip_id], individual={obj.ip_id: {"presets": ["web"]}}))
    assert response.status_code == 201 and response.json()["has_conversions"] is True


def test_a_preset_name_is_unique_within_the_chosen_project_only(console, member, other_project):
    # The console admin administers both projects: uniqueness is checked in the chosen one's scope.
    MembershipFactory(user=User.objects.get(is_staff=True), project=other_project, role=Role.ADMIN)
    steps = '[{"type": "fileExtension", "value": "jpg"}]'
    for project in (member.project, other_project):
        added = console.post("/admin/deliveries/conversionpreset/add/", {
            "project": project.pk, "name": "web", "description": "", "steps": steps})
        assert added.status_code == 302, added.content
    again = console.post("/admin/deliveries/conversionpreset/add/", {
        "project": member.project.pk, "name": "web", "description": "again", "steps": steps})
    assert again.status_code == 200 and b"already exists" in again.content
    assert ConversionPreset.unscoped_objects.filter(name="web").count() == 2
