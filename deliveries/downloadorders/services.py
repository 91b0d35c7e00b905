"""Writes of download orders: creation (targets, renditions, conversions, presets checked and
resolved, the delivery asked for) and rebuilding."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from basket.selectors import basket_for_owner, snapshot_dataset_objects
from basket.services import basket_snapshot
from portal.catalog.models import DataObject, Dataset
from portal.errors import Invalid
from portal.tenancy.models import Project

from .. import conversions
from .. import services as delivery_services
from ..selectors import Target
from . import codes, history, selectors
from .models import ConversionPreset, DownloadOrder, DownloadOrderStatus, DownloadOrderTarget
from .transitions import Action, download_order_transition

BASKET, ENTITIES = "basket", "entities"
DEFAULT_RENDITIONS = ("RAWDATA",)


@dataclass(frozen=True)
class DownloadOrderRequest:
    """A creation request in the domain's words (the API edge checked the JSON shapes)."""

    selection_pool: str
    entities: tuple[str, ...] = ()
    definition_name: str = ""
    global_config: dict = field(default_factory=dict)      # dataset URN -> {renditions, conversions, presets}
    individual_config: dict = field(default_factory=dict)  # data object URN -> the same
    zip_filename: str = ""
    item_name_resolver: str = "filename"
    name: str = ""
    culture: str = ""
    download_order_type: str = "Standard"


# --- what to deliver of each target ------------------------------------------------------------

def _configuration(*, project: Project, entry, where: str, presets: dict[str, list[dict]]) -> dict:
    """One `{renditions, conversions, presets}` entry, checked: renditions known, conversions
    valid, presets existing (expanded into conversions)."""
    if not isinstance(entry, dict):
        raise Invalid(codes.INVALID_REQUEST, f"{where} must be an object with renditions, conversions, presets")
    renditions = entry.get("renditions") or list(DEFAULT_RENDITIONS)
    if not isinstance(renditions, list):
        raise Invalid(codes.INVALID_REQUEST, f"{where}.renditions must be a list")
    for name in renditions:
        if not isinstance(name, str) or selectors.rendition_types(name) is None:
            raise Invalid(codes.UNKNOWN_RENDITION,
                          f"unknown rendition {name!r} in {where}: one of {', '.join(selectors.rendition_names())}",
                          rendition=str(name))
    raw_conversions = entry.get("conversions") or []
    if not isinstance(raw_conversions, list):
        raise Invalid(codes.INVALID_REQUEST, f"{where}.conversions must be a list of lists of steps")
    normal = []
    for steps in raw_conversions:
        try:
            normal.append(conversions.conversion_validate(steps))
        except conversions.ConversionInvalid as exc:
            raise Invalid(codes.UNKNOWN_CONVERSION, f"{exc.message} in {where}", **exc.details) from None
    preset_names = entry.get("presets") or []
    if not isinstance(preset_names, list):
        raise Invalid(codes.INVALID_REQUEST, f"{where}.presets must be a list of names")
    for name in preset_names:
        if name not in presets:
            raise Invalid(codes.UNKNOWN_PRESET, f"unknown preset {name!r} in {where}"
                          + (f": one of {', '.join(sorted(presets))}" if presets else ": the project has none"),
                          preset=str(name))
        normal.append(presets[name])
    return {"renditions": list(dict.fromkeys(renditions)), "conversions": normal,
            "presets": list(preset_names)}


def _project_presets(project: Project) -> dict[str, list[dict]]:
    presets = {}
    for preset in ConversionPreset.objects.filter(project=project):
        try:
            presets[preset.name] = conversions.conversion_validate(preset.steps)
        except conversions.ConversionInvalid:
            continue  # a broken preset is unknown (the admin form refuses to save one)
    return presets


# --- targets -----------------------------------------------------------------------------------

def _targets(*, project: Project, owner, request: DownloadOrderRequest) -> list[tuple[int, int, str]]:
    """(data object id, dataset id, URN) of every target, by id; 400 naming what is unknown."""
    dataset_id = None
    if request.definition_name:
        dataset_id = (Dataset.objects.filter(project=project, ip_id=request.definition_name)
                      .values_list("id", flat=True).first())
        if dataset_id is None:
            raise Invalid(codes.UNKNOWN_DATASET, f"unknown dataset {request.definition_name!r} (definitionName)",
                          dataset=request.definition_name)
    if request.selection_pool == ENTITIES:
        wanted = list(dict.fromkeys(request.entities))
        if not wanted:
            raise Invalid(codes.NO_TARGETS, "target_selection.entities names no entity")
        if len(wanted) > codes.MAX_TARGETS:
            raise Invalid(codes.INVALID_REQUEST, f"at most {codes.MAX_TARGETS} entities")
        found = {urn: (pk, ds) for pk, ds, urn in DataObject.objects.filter(project=project, ip_id__in=wanted)
                 .values_list("id", "dataset_id", "ip_id")}
        missing = [urn for urn in wanted if urn not in found]
        if missing:
            raise Invalid(codes.UNKNOWN_TARGET, f"unknown target {missing[0]!r}", target=missing[0],
                          unknown_targets=missing[:20])
        rows = [(pk, ds, urn) for urn, (pk, ds) in found.items()]
    elif request.selection_pool == BASKET:
        basket = basket_for_owner(project=project, owner=owner)
        entries = basket_snapshot(basket=basket) if basket is not None else []
        rows = []
        for entry in entries:
            objects = snapshot_dataset_objects(project=project, dataset_entry=entry)
            rows.extend(objects.values_list("id", "dataset_id", "ip_id")[:codes.MAX_TARGETS + 1])
        if len(rows) > codes.MAX_TARGETS:
            raise Invalid(codes.INVALID_REQUEST, f"at most {codes.MAX_TARGETS} targets: the basket holds more")
    else:
        raise Invalid(codes.UNKNOWN_SELECTION_POOL,
                      f"unknown selectionPool {request.selection_pool!r}: `basket` or `entities`",
                      selection_pool=str(request.selection_pool))
    if dataset_id is not None:
        rows = [row for row in rows if row[1] == dataset_id]
    rows = sorted(set(rows))
    if not rows:
        raise Invalid(codes.NO_TARGETS, "the selection holds no entity to download"
                      + (f" in dataset {request.definition_name!r}" if request.definition_name else ""))
    return rows


# --- creation ----------------------------------------------------------------------------------

def _check_request(request: DownloadOrderRequest) -> None:
    if request.item_name_resolver not in codes.NAME_RESOLVERS:
        raise Invalid(codes.UNKNOWN_NAME_RESOLVER,
                      f"unknown item_name_resolver_id {request.item_name_resolver!r}: one of "
                      f"{', '.join(codes.NAME_RESOLVERS)}", item_name_resolver_id=request.item_name_resolver)
    if request.download_order_type not in codes.ORDER_TYPES:
        raise Invalid(codes.INVALID_REQUEST, f"download_order_type must be one of {', '.join(codes.ORDER_TYPES)}")


def _per_target(*, project: Project, request: DownloadOrderRequest, rows) -> tuple[dict, list[dict], list[bool]]:
    presets = _project_presets(project)
    dataset_urns = dict(Dataset.objects.filter(project=project, id__in={ds for _, ds, _ in rows})
                        .values_list("id", "ip_id"))
    known_datasets = set(Dataset.objects.filter(project=project, ip_id__in=list(request.global_config))
                         .values_list("ip_id", flat=True))
    for key in request.global_config:
        if key not in known_datasets:
            raise Invalid(codes.UNKNOWN_DATASET, f"unknown dataset {key!r} (order.global)", dataset=key)
    target_urns = {urn for _, _, urn in rows}
    for key in request.individual_config:
        if key not in target_urns:
            raise Invalid(codes.UNKNOWN_TARGET, f"unknown target {key!r} (order.individual): not one of the "
                          "order's entities", target=key)
    configuration = {
        "global": {key: _configuration(project=project, entry=value, where=f"order.global[{key}]", presets=presets)
                   for key, value in request.global_config.items()},
        "individual": {key: _configuration(project=project, entry=value, where=f"order.individual[{key}]",
                                           presets=presets)
                       for key, value in request.individual_config.items()},
    }
    default = {"renditions": list(DEFAULT_RENDITIONS), "conversions": [], "presets": []}
    chosen, individual = [], []
    for _, ds, urn in rows:
        if urn in configuration["individual"]:
            chosen.append(configuration["individual"][urn])
            individual.append(True)
        else:
            chosen.append(configuration["global"].get(dataset_urns.get(ds), default))
            individual.append(False)
    return configuration, chosen, individual


def download_order_create(*, project: Project, owner, request: DownloadOrderRequest,
                          idempotency_key: str = "") -> DownloadOrder:
    """Checks the request, records the order and its targets, and asks for its delivery (the
    worker builds the zip). With `idempotency_key`, a repeated request returns the first order."""
    if idempotency_key:
        known = DownloadOrder.objects.filter(project=project, owner=owner, idempotency_key=idempotency_key).first()
        if known is not None:
            return known
    _check_request(request)
    rows = _targets(project=project, owner=owner, request=request)
    configuration, chosen, individual = _per_target(project=project, request=request, rows=rows)
    try:
        with transaction.atomic():
            order = DownloadOrder.objects.create(
                project=project, owner=owner, modified_by=owner, name=request.name[:255],
                culture=request.culture[:20], download_order_type=request.download_order_type,
                item_name_resolver=request.item_name_resolver, zip_filename=request.zip_filename[:255],
                selection_pool=request.selection_pool, definition_name=request.definition_name[:255],
                configuration=configuration, has_conversions=any(c["conversions"] for c in chosen),
                target_count=len(rows), idempotency_key=idempotency_key[:255])
            DownloadOrderTarget.objects.bulk_create(
                [DownloadOrderTarget(project=project, download_order=order, data_object_id=pk,
                                     renditions=config["renditions"], conversions=config["conversions"],
                                     individual=is_individual)
                 for (pk, _, _), config, is_individual in zip(rows, chosen, individual)], batch_size=1000)
            history.download_order_event_record(project=project, download_order_id=order.pk, from_status="",
                                                to_status=DownloadOrderStatus.PENDING, reason="created")
            delivery = delivery_services.delivery_prepare(
                project=project, user=owner, target=Target(codes.TARGET_KIND, order.catalog_id))
            DownloadOrder.objects.filter(project=project, pk=order.pk).update(delivery=delivery)
            order.delivery = delivery
    except IntegrityError:
        if not idempotency_key:
            raise
        # The same key raced us: the first request's order stands.
        return DownloadOrder.objects.get(project=project, owner=owner, idempotency_key=idempotency_key)
    return order


@transaction.atomic
def download_order_rebuild(*, project: Project, download_order: DownloadOrder, user) -> DownloadOrder:
    """Starts the package over (a new delivery generation); the order is Pending again."""
    download_order_transition(project=project, download_order_id=download_order.pk, action=Action.REBUILD,
                              reason="rebuild", user=user, additional_info="")
    delivery = delivery_services.delivery_prepare(
        project=project, user=user, target=Target(codes.TARGET_KIND, download_order.catalog_id), force=True)
    DownloadOrder.objects.filter(project=project, pk=download_order.pk).update(delivery=delivery)
    download_order.refresh_from_db()
    return download_order
