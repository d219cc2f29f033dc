"""Entity search and one entity's page: names, synonyms, definition, its neighbourhood drawn as a picture, the videos
that mention it or are predicted to be about it and, for a disease, the videos about it as ``GET /diseases/{id}/videos``
lists them: predicted by the trained model or tagged with it (open tags), one list at a time (``via``), by popularity
or quality (``sort``)."""
from __future__ import annotations

from typing import Any

from flask import abort, g, render_template, request, url_for

from api.blueprints.entities import MAX_NEIGHBOURS, get_entity_lookup
from api.db import get_graph
from api.extensions import expensive_page
from api.pages.blueprint import bp
from api.pages.i18n import entity_label, translate
from api.pages.svg import Group, Node, neighbourhood_svg
from api.validation import arg_enum, arg_str, check_id
from kg_builder.store import diseases
from kg_builder.store.entities import entity_detail
from kg_builder.store.reviews import entity_videos


#: Videos each of a disease's two lists shows (the most popular, or the best, first).
DISEASE_VIDEOS = 100


@bp.get("/entities")
@expensive_page
def entities() -> str:
    """Search by name, Chinese name or synonym."""
    q = arg_str(request, "q", max_len=200, default="").strip()
    # The process's lookup, shared with GET /entities: its entity dictionary and remembered answers.
    hits = get_entity_lookup().lookup(get_graph(), q, limit=30) if q else []
    return render_template("entities.html", q=q, hits=[hit.to_dict() for hit in hits])


def _nodes(items: list[dict[str, Any]], lang: str) -> tuple[Node, ...]:
    return tuple(Node(item["id"], entity_label(item, lang)) for item in items)


def neighbourhood(entity: dict[str, Any], lang: str) -> Any:
    """The entity's picture: parents above, children below, phenotypes or diseases right, cross-references left."""
    linked_title, linked, linked_total = (
        ("phenotypes", entity["phenotypes"], entity["phenotype_count"]) if entity["phenotype_count"]
        else ("diseases", entity["diseases"], entity["disease_count"]))
    groups = [
        Group(translate("parents", lang), "top", _nodes(entity["parents"], lang), len(entity["parents"])),
        Group(translate("children", lang), "bottom", _nodes(entity["children"], lang), entity["child_count"]),
        Group(translate(linked_title, lang), "right", _nodes(linked, lang), linked_total),
        # the same concept in other sources: its name is usually the entity's own, so the id says more
        Group(translate("xrefs", lang), "left", tuple(Node(m["id"], m["id"]) for m in entity["maps_to"]),
              len(entity["maps_to"])),
    ]
    return neighbourhood_svg(Node(entity["id"], entity_label(entity, lang)), groups,
                             lambda entity_id: url_for("pages.entity", entity_id=entity_id),
                             more_label=translate("more", lang))


@bp.get("/entities/<entity_id>")
def entity(entity_id: str) -> str:
    check_id("entity id", entity_id)
    graph = get_graph()
    detail = entity_detail(graph, entity_id, max_neighbours=MAX_NEIGHBOURS)
    if detail is None:
        abort(404, description=f"no entity {entity_id}")
    about: dict[str, Any] = {}
    if detail.get("kind") == "Disease":
        via = arg_enum(request, "via", diseases.VIA, default="predicted")
        sort = arg_enum(request, "sort", diseases.SORT_KEYS, default="popularity")
        # both lists, so that the switch can say how many each has
        lists = {v: diseases.disease_videos(graph, entity_id, sort=sort, min_quality=1, limit=DISEASE_VIDEOS, via=v)
                 for v in diseases.VIA}
        about = {"via": via, "sort": sort, "lists": lists, "limit": DISEASE_VIDEOS}
    return render_template("entity.html", e=detail, picture=neighbourhood(detail, g.lang),
                           videos=entity_videos(graph, entity_id), about=about)
