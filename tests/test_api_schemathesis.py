"""Property-based API test: schemathesis generates requests from /openapi.json for every operation and checks that
none gets a 5xx. Runs in-process through the WSGI app against the real Neo4j and Redis.

POST /batches is sent with the bearer token, and the ratings endpoints with a reviewer's token (a reviewer created for
the run and deleted with its ratings afterwards), so schemathesis also reaches their validation; the app's broker is
Redis database 15, where no worker listens: accepted batches just sit in the queue, which is purged afterwards, and
their Batch and Video nodes are deleted.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.accounts import add_rater
from api.app import create_app
from api.db import close_graph
from kg_builder.graph import Graph
from ovp.settings import Settings
from review_support import delete_review_data
from test_api import purge_test_queue

TOKEN = "schemathesis-token"
#: Examples per operation: enough to hit the validation edges, small enough to keep the file under a minute.
MAX_EXAMPLES = 25

_SETTINGS = Settings.from_env()
_BROKER = urlunsplit(urlsplit(_SETTINGS.broker_url)._replace(path="/15"))
APP = create_app(dataclasses.replace(_SETTINGS, api_token=TOKEN, broker_url=_BROKER), {"TESTING": True})
schema = schemathesis.openapi.from_wsgi("/openapi.json", APP)
#: Batches accepted during the run and the video ids they carried, for clean-up.
ACCEPTED: dict[str, list[str]] = {}
REVIEWER = "schemathesis_reviewer"
#: The reviewer's token, set by the module fixture.
REVIEWER_TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def clean_up(graph: Graph, built_kg: dict[str, Any]) -> Iterator[None]:
    """A reviewer for the ratings endpoints; after the run: drop it with its ratings, accepted batches, the
    still-unprofiled videos they created, and the queued messages."""
    delete_review_data(graph, REVIEWER)
    REVIEWER_TOKEN["token"] = add_rater(graph, REVIEWER).token
    yield
    delete_review_data(graph, REVIEWER)
    if ACCEPTED:
        video_ids = sorted({v for ids in ACCEPTED.values() for v in ids})
        graph.write("MATCH (b:Batch) WHERE b.id IN $ids DETACH DELETE b", {"ids": list(ACCEPTED)})
        # Only videos that no other batch holds and that have no profile: nothing anybody else wrote.
        graph.write(
            "MATCH (v:Video) WHERE v.id IN $ids AND NOT (v)--() DELETE v",
            {"ids": video_ids},
        )
    purge_test_queue(_BROKER)
    close_graph(APP)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: Any) -> None:
    headers = None
    if case.operation.path == "/batches":
        headers = {"Authorization": f"Bearer {TOKEN}"}
    elif case.operation.path.endswith("/ratings"):
        headers = {"Authorization": f"Bearer {REVIEWER_TOKEN['token']}"}
    response = case.call(headers=headers)
    if case.operation.path == "/batches" and response.status_code == 202:
        body = case.body
        videos = body["videos"] if isinstance(body, dict) else body
        ACCEPTED[response.json()["batch_id"]] = [v["id"] for v in videos if isinstance(v, dict) and "id" in v]
    case.validate_response(response, checks=[not_a_server_error])
