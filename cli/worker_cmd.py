"""`ovp profile` (in-process or --submit), `ovp batch status` and `ovp batch resume`."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ovp.errors import OVPError
from ovp.settings import Settings


@click.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), help="Trained model directory (default: OVP_MODEL_DIR or .ovp/model).")
@click.option("--submit", is_flag=True, help="Enqueue the batch for the Celery workers instead of profiling in-process.")
@click.option("--wait", "wait_s", type=float, default=0.0, help="With --submit: poll until the batch finishes or this many seconds pass.")
@click.option("--batch-id", help="Batch id (default: a new random one); an id already in the graph is refused.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_obj
def profile(settings: Settings, manifest: Path, model_dir: Path | None, submit: bool, wait_s: float, batch_id: str | None, as_json: bool) -> None:
    """Profile the videos of MANIFEST and write the profiles into the graph.

    Every video must lie under the manifest's folder or a folder of OVP_MEDIA_ROOTS (symlinks followed).
    """
    from fusion.manifest import read_manifest
    from kg_builder.graph import Graph
    from worker.batches import new_batch_id

    # ManifestError lists every bad line (a path outside the allowed folders too) before anything is queued.
    entries = read_manifest(manifest, media_roots=settings.media_root_paths)
    folder = manifest.resolve().parent
    batch_id = batch_id or new_batch_id()
    if submit:
        if model_dir is not None:
            raise click.UsageError("--model applies to in-process profiling; workers read OVP_MODEL_DIR")
        from worker.batches import submit_batch
        from worker.celery_app import make_celery

        # Recorded in the graph (its videos pending) before it is enqueued: `ovp batch status` knows it at once.
        with Graph.connect(settings) as graph:
            submit_batch(graph, make_celery(settings), batch_id, entries, media_roots=[str(folder)])
        click.echo(f"submitted batch {batch_id}: {len(entries)} videos", err=True)
        if wait_s <= 0:
            _print_status({"id": batch_id, "status": "submitted", "total": len(entries)}, as_json)
            return
        _wait_for_batch(settings, batch_id, wait_s)
        _report(settings, batch_id, [e.id for e in entries], as_json)
        return

    from worker.pipeline import profile_in_process

    with Graph.connect(settings) as graph:
        profile_in_process(graph, settings, entries, batch_id=batch_id, model_dir=model_dir, progress=sys.stderr.isatty(),
                           media_roots=[folder])
    _report(settings, batch_id, [e.id for e in entries], as_json)


def _report(settings: Settings, batch_id: str, video_ids: list[str], as_json: bool) -> None:
    """The batch's status and a table of the latest profiles of its videos."""
    from kg_builder.graph import Graph
    from kg_builder.store.batches import batch_status
    from kg_builder.store.profiles import latest_profile_summaries

    with Graph.connect(settings) as graph:
        status = batch_status(graph, batch_id) or {"id": batch_id, "status": "unknown"}
        table = latest_profile_summaries(graph, video_ids)
    if as_json:
        click.echo(json.dumps({"batch": status, "profiles": table}, ensure_ascii=False, indent=2))
        return
    _print_status(status, False)
    click.echo(f"{'video':<24} {'GQS':>3} {'pop.%':>6}  predicted diseases (prob)")
    for row in table:
        quality, pct = (("-" if row[k] is None else row[k]) for k in ("quality", "popularity_pct"))
        click.echo(f"{row['video']:<24} {quality:>3} {pct:>6}  {', '.join(row['diseases']) or '-'}")


def _wait_for_batch(settings: Settings, batch_id: str, wait_s: float) -> dict | None:
    """Poll the batch until it is finished (or rejected) or ``wait_s`` passes."""
    from kg_builder.graph import Graph
    from kg_builder.store.batches import batch_status

    deadline = time.monotonic() + wait_s
    status = None
    with Graph.connect(settings) as graph:
        while time.monotonic() < deadline:
            status = batch_status(graph, batch_id)
            if status and status.get("status") in ("finished", "rejected"):
                break
            time.sleep(1.0)
    return status


def _print_status(status: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(status, ensure_ascii=False, indent=2))
        return
    click.echo(f"batch {status.get('id')}: {status.get('status')} — {status.get('done', 0)} done, "
               f"{status.get('failed', 0)} failed of {status.get('total', '?')}")
    for failure in status.get("failures", []):
        click.echo(f"  failed {failure['video_id']}: {failure['reason']}")


@click.group()
def batch() -> None:
    """Inspect submitted batches."""


@batch.command("status")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(settings: Settings, batch_id: str, as_json: bool) -> None:
    """Progress and per-video failures of batch BATCH_ID."""
    from kg_builder.graph import Graph
    from kg_builder.store.batches import batch_status

    with Graph.connect(settings) as graph:
        report = batch_status(graph, batch_id)
    if report is None:
        raise OVPError(f"no batch {batch_id!r} in the graph", hint="check the id printed by `ovp profile --submit`")
    _print_status(report, as_json)


@batch.command("resume")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def resume(settings: Settings, batch_id: str, as_json: bool) -> None:
    """Enqueue again the videos of BATCH_ID that are pending but on no queue and held by no worker (lost to a broker
    restart, a broker that was down at submission, ...). Safe to run any time: work that is queued or running is left
    alone, and a video enqueued twice is profiled once."""
    from kg_builder.graph import Graph
    from kg_builder.store.batches import batch_exists
    from worker.celery_app import make_celery
    from worker.reconcile import reconcile_batch

    with Graph.connect(settings) as graph:
        if not batch_exists(graph, batch_id):
            raise OVPError(f"no batch {batch_id!r} in the graph", hint="check the id printed by `ovp profile --submit`")
        report = reconcile_batch(graph, make_celery(settings), settings, batch_id)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    facts = report.to_dict()
    click.echo(f"batch {batch_id}: {facts['pending']} pending — {facts['on_a_queue']} on a queue, "
               f"{facts['held_by_a_worker']} held by a worker, {facts['queued_moments_ago']} queued moments ago, "
               f"{facts['enqueued_again']} enqueued again ({facts['chunks']} chunks)")
