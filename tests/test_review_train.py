"""Ratings → `ovp ratings export` → `ovp train`: the exported manifest trains a model whose card counts the videos
that reviewers labelled. Tiny SYNTHETIC set, real graph, ResNet-18 with random weights, one epoch (this pins the
hand-over, not the learning)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from api.accounts import add_rater
from api.ratings import RatingInput, store_rating
from fusion.demo_data import generate_demo_set
from fusion.manifest import read_manifest, write_manifest
from kg_builder.graph import Graph
from cli import main
from review_support import delete_review_data
from kg_builder.store.batches import record_batch
from worker.records import video_meta

PREFIX = "trainreview_"


def test_ratings_export_trains_a_model_that_counts_them(graph: Graph, built_kg: dict[str, Any], tmp_path: Path) -> None:
    delete_review_data(graph, PREFIX)
    generate_demo_set(tmp_path / "demo", videos=12, seed=7)
    entries = [dataclasses.replace(e, id=PREFIX + e.id) for e in read_manifest(tmp_path / "demo" / "manifest.jsonl")]
    write_manifest(entries, tmp_path / "demo" / "renamed.jsonl")
    try:
        record_batch(graph, f"{PREFIX}batch", [video_meta(e) for e in entries])
        ann, ben = add_rater(graph, f"{PREFIX}ann"), add_rater(graph, f"{PREFIX}ben")
        for i, entry in enumerate(entries[:10]):
            diseases = tuple(entry.diseases or ())
            store_rating(graph, ann.name, entry.id, RatingInput(gqs=1 + i % 5, diseases=diseases))
            if i < 4:
                store_rating(graph, ben.name, entry.id, RatingInput(gqs=2 + i % 4, diseases=diseases))
        runner = CliRunner()
        env = {"OVP_HOME": str(tmp_path / "home"), "OVP_KEYFRAMES": "4", "OVP_DEVICE": "cpu", "OVP_LOG_LEVEL": "WARNING"}
        exported = tmp_path / "rated.jsonl"
        result = runner.invoke(main, ["ratings", "export", "--out", str(exported)], env=env)
        assert result.exit_code == 0, result.output
        mine = [e for e in read_manifest(exported) if e.id.startswith(PREFIX)]
        assert len(mine) == 10 and {e.raters for e in mine} == {1, 2}
        first = next(e for e in mine if e.id == entries[0].id)
        assert first.quality == 1  # ann 1, ben 2: the median 1.5 is rounded down
        assert first.diseases == tuple(sorted(entries[0].diseases or ()))
        write_manifest(mine, tmp_path / "mine.jsonl")  # only this test's videos (the graph may hold other ratings)

        model = tmp_path / "model"
        result = runner.invoke(main, ["train", str(tmp_path / "mine.jsonl"), "--out", str(model), "--epochs", "1"], env=env)
        assert result.exit_code == 0, result.output
        metrics = json.loads((model / "metrics.json").read_text())
        assert metrics["n_rated"] == metrics["n_train"] + metrics["n_val"] > 0
        assert f"{metrics['n_rated']} of them labelled by reviewers' ratings" in (model / "model_card.md").read_text()
    finally:
        delete_review_data(graph, PREFIX)
        graph.write("MATCH (b:Batch {id: $id}) DETACH DELETE b", {"id": f"{PREFIX}batch"})
