"""The profiling pipeline: keyframes → linking → enrichment → text states → fusion → open-vocabulary tags → profile
records.

One :class:`ProfilingPipeline` per process holds the loaded encoders and the fusion model (built once, in
``worker_process_init`` for Celery workers). ``profile`` turns a chunk of manifest entries into one outcome per entry
with one forward pass for the chunk; :func:`profile_in_process` is ``ovp profile`` without Celery: the same batch
records and chunk runner, in this process.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from encoders.disease_tags import WHOLE_TEXT, DiseaseTag, DiseaseTagger, NamedEvidence, SimilarityEvidence, TextTags
from encoders.enrichment import EnrichedText
from fusion.features import FeatureExtractor, FeatureFailure, FeatureSettings, locate, text_segments
from fusion.inference import LoadedModel, load_model
from fusion.manifest import VideoEntry
from fusion.records import Prediction, VideoFeatures
from kg_builder.graph import Graph
from ovp.settings import Settings
from kg_builder.store.rows import DiseasePrediction, MentionRecord
from worker.batches import chunked, record_submission
from worker.chunks import ChunkReport, VideoOutcome, run_chunk
from worker.records import DiseaseEvidence, Explanation, ProfileRecord, video_meta

log = logging.getLogger(__name__)

#: How much of the explanation a profile keeps: the keyframes and entities with the largest attention weights.
TOP_KEYFRAMES = 3
TOP_ENTITIES = 5


@dataclass
class PipelineTimings:
    """Seconds spent in the fusion forward pass, the open-vocabulary tags and record assembly (the extractor times the
    earlier stages)."""

    fusion_s: float = 0.0
    tags_s: float = 0.0
    records_s: float = 0.0
    videos: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class ProfilingPipeline:
    """Encoders, fusion model and disease tagger, loaded once; profiles chunks of videos.

    Args:
        settings: device, caches, prediction threshold.
        extractor: features exactly as the model was trained on them.
        model: the trained fusion model.
        tagger: the open-vocabulary disease tagger (None: profiles without tags or text vectors).
    """

    def __init__(self, settings: Settings, extractor: FeatureExtractor, model: LoadedModel,
                 tagger: DiseaseTagger | None = None) -> None:
        self.settings = settings
        self.extractor = extractor
        self.model = model
        self.tagger = tagger
        self.timings = PipelineTimings()

    @classmethod
    def load(cls, settings: Settings, model_dir: Path | None, graph: Graph) -> "ProfilingPipeline":
        """Load the fusion model from ``model_dir`` (``None``: ``settings.model_path``), the encoders it was trained
        with (``features.json`` beside the model), which read the knowledge graph through ``graph``, and, with
        ``settings.open_tags``, the disease tagger.

        Raises:
            ModelNotFound: the model directory is missing or incomplete (train one with ``ovp train``), or the
                sentence encoder's package is missing.
            GraphUnavailable: the linker's knowledge base cannot be read.
        """
        model_dir = Path(model_dir) if model_dir else settings.model_path
        # One setting for the whole process (torch's thread pool is global): a worker process runs one pipeline. On a
        # 2-core machine two intra-op threads were 1.5x faster than one while the machine was quiet and 4x slower while
        # other work kept its cores busy (bench/profile_throughput.py --torch-threads 2,1): the default stays torch's.
        if settings.torch_threads > 0:
            torch.set_num_threads(settings.torch_threads)
        model = load_model(model_dir, device=settings.device, precision=settings.fusion_precision)
        extractor = FeatureExtractor(graph, settings, FeatureSettings.for_model(model_dir, settings))
        tagger = DiseaseTagger(graph, settings) if settings.open_tags else None
        log.info("profiling pipeline ready: model %s from %s, open tags %s, %d torch threads", model.model_version,
                 model_dir, "on" if tagger else "off", torch.get_num_threads())
        return cls(settings, extractor, model, tagger)

    @property
    def model_version(self) -> str:
        return self.model.model_version

    def stage_seconds(self) -> dict[str, float]:
        """Seconds spent so far per stage (the extractor's and this pipeline's timings), for the benchmarks."""
        t, p = self.extractor.timings, self.timings
        return {"hash_and_cache": t.hash_s, "visual_decode_plus_resnet": t.visual_s, "link_and_enrich": t.link_enrich_s,
                "text_bert": t.text_s, "assemble": t.assemble_s, "fusion": p.fusion_s, "open_tags": p.tags_s,
                "records": p.records_s}

    def profile(self, entries: Sequence[VideoEntry]) -> list[VideoOutcome]:
        """One outcome per entry, in order: a profile record, or the reason (bad input) there is none."""
        if not entries:
            return []
        results, enriched = self.extractor.extract_with_text(entries)
        usable = [(i, r) for i, r in enumerate(results) if isinstance(r, VideoFeatures)]
        started = time.perf_counter()
        predictions = self.model.predict([features for _, features in usable]) if usable else []
        self.timings.fusion_s += time.perf_counter() - started

        started = time.perf_counter()
        tags: list[TextTags | None] = [None] * len(usable)
        if self.tagger is not None and usable:
            # The linked text (title, caption, hashtags) and its mentions: the tags' offsets are the mentions' own.
            tags = list(self.tagger.tag([enriched[i].caption for i, _ in usable], [enriched[i].mentions for i, _ in usable]))
        self.timings.tags_s += time.perf_counter() - started

        started = time.perf_counter()
        outcomes: list[VideoOutcome | None] = [None] * len(entries)
        for i, result in enumerate(results):
            if isinstance(result, FeatureFailure):
                outcomes[i] = VideoOutcome(entries[i].id, error=result.reason)
        for (i, _), prediction, tagged in zip(usable, predictions, tags):
            outcomes[i] = VideoOutcome(entries[i].id, record=self.record(entries[i], prediction, enriched[i], tagged))
        self.timings.records_s += time.perf_counter() - started
        self.timings.videos += len(entries)
        return outcomes  # type: ignore[return-value]

    def record(self, entry: VideoEntry, prediction: Prediction, enriched: EnrichedText,
               tags: TextTags | None = None) -> ProfileRecord:
        """The profile record of one video: predictions at or above the threshold (or the most probable alone, by the
        model's at-least-one rule), mentions, the explanation, and the open-vocabulary tags and text vector."""
        ranked = prediction.ranked_diseases(self.settings.predict_threshold)
        return ProfileRecord(
            video=video_meta(entry),
            model_version=self.model_version,
            # A head the model does not have (no training label) predicts nothing rather than a default.
            popularity=None if prediction.popularity is None else float(prediction.popularity),
            popularity_pct=None if prediction.popularity_pct is None else float(prediction.popularity_pct),
            quality=None if prediction.quality is None else int(prediction.quality),
            quality_probs=tuple(float(p) for p in (prediction.quality_probs or ())),
            predictions=tuple(DiseasePrediction(d, float(p), rank) for rank, (d, p) in enumerate(ranked, start=1)),
            mentions=mention_records(entry, enriched.mentions),
            explanation=Explanation(
                keyframes=tuple(_top(prediction.frame_attention, TOP_KEYFRAMES)),
                entities=tuple(_top(prediction.entity_attention, TOP_ENTITIES)),
                diseases=tuple(disease_evidence(d, p, prediction, enriched, by_rule=p < self.settings.predict_threshold)
                               for d, p in ranked),
            ),
            embedding=tuple(float(x) for x in prediction.embedding),
            visual_backbone=self.extractor.visual.config.backbone,
            visual_weights=self.extractor.visual.weights_tag,
            text_model=self.extractor.text.name,
            tags=located_tags(entry, tags.tags) if tags is not None else (),
            # A blank text's vector is zero, which the cosine index cannot hold: such a video is found by nothing.
            text_vector=tuple(float(x) for x in tags.vector) if tags is not None and tags.vector.any() else (),
        )


def mention_records(entry: VideoEntry, mentions: Sequence[object]) -> tuple[MentionRecord, ...]:
    """The linker's mentions (offsets into ``compose_text(entry)``) as records whose offsets index their own field."""
    segments = text_segments(entry)
    records = []
    for m in mentions:
        name, start, end = locate(segments, m.start, m.end)  # type: ignore[attr-defined]
        records.append(MentionRecord(m.id, m.surface, start, end, float(m.score), bool(m.negated), name))  # type: ignore[attr-defined]
    return tuple(records)


def located_tags(entry: VideoEntry, tags: Sequence[DiseaseTag]) -> tuple[DiseaseTag, ...]:
    """The tags with their evidence's spans (offsets into ``compose_text(entry)``) as offsets into their own field,
    as the mentions are stored; a similarity won by the whole text keeps field ``all`` and its offsets."""
    segments = text_segments(entry)

    def named(e: NamedEvidence) -> NamedEvidence:
        field, start, end = locate(segments, e.start, e.end)
        return dataclasses.replace(e, field=field, start=start, end=end)

    def similar(e: SimilarityEvidence | None) -> SimilarityEvidence | None:
        if e is None or e.field == WHOLE_TEXT:
            return e
        field, start, end = locate(segments, e.start, e.end)
        return dataclasses.replace(e, field=field, start=start, end=end)

    return tuple(dataclasses.replace(tag, evidence=tuple(
        dataclasses.replace(s, named=tuple(named(e) for e in s.named), similarity=similar(s.similarity))
        for s in tag.evidence)) for tag in tags)


def disease_evidence(disease_id: str, prob: float, prediction: Prediction, enriched: EnrichedText,
                     by_rule: bool = False) -> DiseaseEvidence:
    """What the caption, the graph and the keyframes say about one predicted disease: the mention prior's and the
    keyframes' path's shares of its log-odds, the rest being the fused head's, and the keyframe that path leaned on."""
    prior = prediction.disease_prior_logits.get(disease_id)
    frames = prediction.disease_frame_logits.get(disease_id)
    head = None
    if prior is not None or frames is not None:
        p = min(max(prob, 1e-7), 1 - 1e-7)
        head = round(math.log(p / (1 - p)) - (prior or 0.0) - (frames or 0.0), 4)
    keyframe = prediction.disease_keyframes.get(disease_id)
    return DiseaseEvidence(disease_id, named=disease_id in enriched.entity_ids,
                           via=tuple(enriched.related_via.get(disease_id, ())),
                           prior_logit=None if prior is None else round(prior, 4), head_logit=head,
                           frames_logit=None if frames is None else round(frames, 4),
                           keyframe=None if keyframe is None else (round(keyframe[0], 3), round(keyframe[1], 4)),
                           by_rule=by_rule)


def _top(pairs: Sequence[tuple[object, float]], n: int) -> list[tuple]:
    return [(key, round(float(weight), 4)) for key, weight in sorted(pairs, key=lambda kv: -kv[1])[:n]]


def profile_in_process(
    graph: Graph,
    settings: Settings,
    entries: Sequence[VideoEntry],
    *,
    batch_id: str,
    model_dir: Path | None = None,
    progress: bool = False,
    pipeline: ProfilingPipeline | None = None,
    media_roots: Sequence[Path] | None = None,
) -> list[ChunkReport]:
    """``ovp profile`` without Celery: record the batch, then run its chunks here, one after another.

    ``media_roots``: the folders besides ``OVP_MEDIA_ROOTS`` that videos may come from (the manifest's folder); each
    video is checked again before it is read. None: the caller vouches for the entries' paths (a bench, a test).

    Raises:
        BatchExists: the batch id is already used.
        ChunkInterrupted: Neo4j went away mid-batch; the batch stays recorded with its unfinished videos pending
            (``ovp batch resume`` hands them to the workers).
    """
    from tqdm.auto import tqdm

    pipeline = pipeline or ProfilingPipeline.load(settings, model_dir, graph)
    record_submission(graph, batch_id, entries, media_roots=[str(root) for root in media_roots or ()])
    roots = None if media_roots is None else [*settings.media_root_paths, *media_roots]
    chunks = chunked(entries, settings.chunk_size)
    reports = []
    for chunk in tqdm(chunks, desc="profiling", unit="chunk", disable=not progress):
        reports.append(run_chunk(graph, pipeline, batch_id, chunk, max_deliveries=settings.max_deliveries,
                                 lease_s=settings.chunk_hard_limit_s + 60, media_roots=roots))
    done = sum(len(r.done) for r in reports)
    failed = sum(len(r.failed) for r in reports)
    log.info("batch %s: %d profiled, %d failed, model %s", batch_id, done, failed, pipeline.model_version)
    return reports
