"""From manifest entries to ``VideoFeatures``: keyframes → ImageNet CNN, caption → links → enrichment → BERT states,
GNN embeddings of the linked entities, metadata and labels.

:class:`FeatureExtractor` loads the visual encoder, the linker (knowledge base read from the graph) and the text encoder
once; :meth:`FeatureExtractor.extract` turns a batch of :class:`fusion.manifest.VideoEntry` into one
``VideoFeatures`` or :class:`FeatureFailure` per entry (a video that does not decode never kills the batch).

The expensive parts of a video's features (keyframe features and token states) are cached as one ``.npz`` per video
under ``<OVP_HOME>/cache/features/``, keyed by the SHA-256 of the video file, the SHA-256 of the exact text encoded and
the versions of both encoders, so ``ovp train``, ``ovp evaluate`` and ``ovp ablate`` on one manifest compute them
once. The cheap parts (links, enrichment, GNN embeddings, metadata, labels) are recomputed on every call, so a rebuilt
graph or new GNN embeddings are always picked up. :func:`manifest_features` is the whole step for one manifest, as
``ovp train``, ``ovp evaluate`` and ``ovp ablate`` run it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from encoders.device import torch_threads
from encoders.enrichment import GNN_DIM, EnrichedText, EnrichmentConfig, KnowledgeEnricher
from encoders.media import HashedFile, MediaLimits, hash_media
from fusion.config import FusionConfig
from fusion.manifest import TEXT_FIELDS, VideoEntry, linked_fields, read_manifest
from fusion.records import LabelMap, VideoFeatures, metadata_vector
from kg_builder.graph import Graph
from kg_builder.store.labels import read_profile_labels
from ovp.errors import ModelNotFound, VideoDecodeError
from ovp.settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "FEATURE_CACHE_FORMAT",
    "FeatureSettings",
    "FeatureFailure",
    "StageTimings",
    "FeatureExtractor",
    "compose_text",
    "locate",
    "text_segments",
    "TextSegment",
    "profile_label_map",
    "ManifestFeatures",
    "manifest_features",
    "feature_settings_for",
]

#: Bumped when the stored layout or what goes into the cached arrays changes, so old entries stop matching.
FEATURE_CACHE_FORMAT = 1

#: Written beside a trained model by ``ovp train``.
MODEL_FEATURES_FILE = "features.json"


@dataclass(frozen=True)
class FeatureSettings:
    """What shapes the features (saved with a trained model as ``features.json`` so evaluation extracts the same).

    Attributes:
        keyframes: K keyframes per video (``OVP_KEYFRAMES``).
        visual_backbone, visual_weights, resnet_weights: the visual encoder (``OVP_VISUAL_BACKBONE``,
            ``OVP_VISUAL_WEIGHTS``, ``OVP_RESNET_WEIGHTS``; see :class:`encoders.visual.VisualEncoderConfig`).
        text_model: the text encoder (``OVP_TEXT_MODEL``: a known model's name or a directory; "" = the default,
            :data:`encoders.text.DEFAULT_TEXT_MODEL`).
        text_max_length: token positions per text (256: the caption and its annotations fit; both models have 512).
        enrich: append graph annotations to the text (False = the caption-only ablation).
        enrichment: the bounds of the annotations.
        caption_states: also encode each caption on its own and keep those states beside the joint ones
            (``VideoFeatures.caption_tokens``; the caption-only ablation's token states, shared with it through the
            cache), for a model that reads them (``FusionConfig.reads_caption_alone``), which is when
            :func:`feature_settings_for` turns it on (one more cache lookup, or text pass, over the
            captions; the linking is not repeated); off otherwise.
    """

    keyframes: int = 8
    visual_backbone: str = "efficientnet_lite0"
    visual_weights: str = "pretrained"
    resnet_weights: str = ""
    text_model: str = ""
    text_max_length: int = 256
    enrich: bool = True
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)
    caption_states: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "FeatureSettings":
        """The feature settings ``settings`` describe, with ``overrides`` applied."""
        base = cls(keyframes=settings.keyframes, visual_backbone=settings.visual_backbone,
                   visual_weights=settings.visual_weights, resnet_weights=settings.resnet_weights,
                   text_model=settings.text_model)
        return replace(base, **overrides) if overrides else base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSettings":
        """Inverse of ``to_dict``, also for the ``features.json`` of models saved before an option existed or after one
        was retired.

        Raises:
            ValueError: the features were extracted with a retired option (``separate_knowledge``), or by a ResNet whose
                weights were not recorded: the message names it and says to retrain.
        """
        values = dict(data)
        # Retired (docs/fusion-history.md): a model trained on such features needs them, and they are gone.
        if values.pop("separate_knowledge", False):
            raise ValueError("the model was trained on features extracted with separate_knowledge=True, which this "
                             "version no longer has (retired: docs/fusion-history.md says why); retrain it with "
                             "`ovp train`")
        # Saved before ``caption_states`` existed: those models' features carry no caption-alone states.
        values.setdefault("caption_states", False)
        # Saved when ResNets were the only backbones and MiniLM the only text model ("" then meant it). Their weights
        # were random when asked ("none") or when torchvision's cache held none ("") — which of the two is not recorded.
        if "resnet_arch" in values:
            values["visual_backbone"] = values.pop("resnet_arch")
            if values.get("resnet_weights") == "none":
                values["visual_weights"], values["resnet_weights"] = "random", ""
            elif not values.get("resnet_weights"):
                raise ValueError(f"the model was trained on {values['visual_backbone']} features whose weights were not "
                                 "recorded (torchvision's cache, or random when it had none); retrain it with `ovp train`")
            values["text_model"] = values.get("text_model") or "all-MiniLM-L6-v2"
        values["enrichment"] = EnrichmentConfig(**values.get("enrichment", {}))
        return cls(**values)

    @classmethod
    def for_model(cls, model_dir: Path, settings: Settings) -> "FeatureSettings":
        """The feature settings a trained model was trained with (``features.json`` beside it), so inference extracts
        exactly what training saw; the current settings for a model directory without that file.

        Raises:
            ModelNotFound: ``features.json`` is unreadable or names settings this version cannot extract (a retired
                option: the message names it and says to retrain).
        """
        file = Path(model_dir) / MODEL_FEATURES_FILE
        if not file.is_file():
            return cls.from_settings(settings)
        try:
            return cls.from_dict(json.loads(file.read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise ModelNotFound(f"{file} cannot be used: {exc}") from exc


@dataclass(frozen=True)
class FeatureFailure:
    """A manifest entry whose features could not be computed (the video does not decode, the file is missing …)."""

    video_id: str
    reason: str


@dataclass
class StageTimings:
    """Wall-clock seconds per stage of :meth:`FeatureExtractor.extract`, summed over calls (for the benchmark)."""

    load_s: float = 0.0  # building the encoders and the knowledge base (once)
    hash_s: float = 0.0  # SHA-256 of the video files and cache reads
    visual_s: float = 0.0  # decode + keyframes + CNN (cache misses only)
    link_enrich_s: float = 0.0  # entity linking and the enrichment round trip
    text_s: float = 0.0  # BERT states (cache misses only)
    assemble_s: float = 0.0  # metadata, labels, records, cache writes
    videos: int = 0
    cache_hits: int = 0
    failures: int = 0

    @property
    def total_s(self) -> float:
        return self.load_s + self.hash_s + self.visual_s + self.link_enrich_s + self.text_s + self.assemble_s

    def to_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        out["total_s"] = round(self.total_s, 3)
        return out


@dataclass(frozen=True)
class TextSegment:
    """One field's part of the linked text: ``text`` starts at ``start`` in :func:`compose_text`'s result."""

    field: str
    start: int
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def text_segments(entry: VideoEntry) -> list[TextSegment]:
    """The non-empty parts of the linked text, in order: the title, the caption, the hashtags the caption does not show
    (written ``#a #b``) and the transcript, each stripped, joined by one newline."""
    fields = linked_fields(entry.title, entry.caption, entry.hashtags, entry.transcript)
    segments: list[TextSegment] = []
    at = 0
    for name in TEXT_FIELDS:
        text = fields[name]
        if text:
            segments.append(TextSegment(name, at, text))
            at += len(text) + 1
    return segments


def compose_text(entry: VideoEntry) -> str:
    """The text that is linked and encoded for a video: title, caption, the hashtags the caption does not show and
    the transcript, joined by newlines (:func:`text_segments`). A video without a transcript gives the same text as
    before transcripts existed, so cached token states stay valid."""
    return "\n".join(segment.text for segment in text_segments(entry))


def locate(segments: Sequence[TextSegment], start: int, end: int) -> tuple[str, int, int]:
    """``(field, start, end)``: a span of :func:`compose_text`'s result as offsets into the one field it lies in.

    A span that crosses a field boundary (a semantic match over a clause may) belongs to the field where it starts,
    cut at that field's end.
    """
    for segment in segments:
        if segment.start <= start < segment.end + 1:
            return segment.field, start - segment.start, min(end, segment.end) - segment.start
    raise ValueError(f"span {start}–{end} lies outside the linked text")


def profile_label_map(graph: Graph) -> LabelMap:
    """The ``LabelMap`` of the graph's profile-label diseases (``kg_builder.store.labels``), by id.

    Raises:
        ValueError: the graph has no profile-label disease (build it with ``ovp kg build``).
        GraphUnavailable: Neo4j cannot be reached.
    """
    labels = read_profile_labels(graph)
    if not labels:
        raise ValueError("the graph has no Disease with profile_label: true — build it with `ovp kg build`")
    return LabelMap(tuple(label.id for label in labels), {label.id: label.name for label in labels})


def _published_hour(entry: VideoEntry) -> float:
    # The hour on the publisher's clock (the offset in the manifest), which is what audiences react to.
    t = entry.published_at
    return t.hour + t.minute / 60.0


class FeatureExtractor:
    """Loads the encoders once and extracts features for batches of manifest entries.

    Args:
        graph: the knowledge graph (``kg_builder.graph.Graph``): the linker's knowledge base, the enrichment and the
            label map are read from it.
        settings: device, cache and timeout settings.
        features: what shapes the features (``FeatureSettings.from_settings(settings)`` when omitted).
        visual_seed: seed of the visual encoder's random weights (``visual_weights="random"``).
    """

    def __init__(
        self,
        graph: Graph,
        settings: Settings,
        features: FeatureSettings | None = None,
        *,
        visual_seed: int = 0,
    ) -> None:
        from encoders.feature_cache import FeatureCache
        from encoders.keyframes_gpu import keyframe_decoder
        from encoders.linking import load_linker
        from encoders.text import TextEncoder, TextEncoderConfig
        from encoders.visual import VisualEncoder, VisualEncoderConfig

        started = time.perf_counter()
        self.graph = graph
        self.settings = settings
        self.features = features or FeatureSettings.from_settings(self.settings)
        self.visual = VisualEncoder(VisualEncoderConfig(
            backbone=self.features.visual_backbone, weights=self.features.visual_weights,
            resnet_weights=self.features.resnet_weights, device=self.settings.device, seed=visual_seed,
        ))
        self.visual_cache = FeatureCache.from_settings(self.settings)
        self.keyframes = keyframe_decoder(self.settings.video_decoder, self.visual.device)
        logger.info("keyframes decoded by %s (%s)", self.keyframes.name, self.keyframes.reason)
        self.text = TextEncoder(TextEncoderConfig(
            model=self.features.text_model, models_dir=self.settings.models_dir, device=self.settings.device,
            max_length=self.features.text_max_length,
        ))
        # The same linker as the API, worker and CLI (dictionary + the cross-lingual semantic fallback, whose sentence
        # vectors are its own model, not this token-state encoder).
        self.linker = load_linker(self.settings, graph, semantic=True)
        self.enricher = KnowledgeEnricher(graph, self.features.enrichment)
        self.label_map = profile_label_map(graph)
        self._label_ids = set(self.label_map.disease_ids)
        self.cache_root = self.settings.cache_dir / "features"
        self.timings = StageTimings(load_s=time.perf_counter() - started)

    # --- identity and cache ---------------------------------------------------------------------------------------

    @property
    def text_identity(self) -> str:
        """What the token states depend on besides the text: the model, max length, transformers version."""
        import transformers

        return f"{self.text.identity}|L{self.features.text_max_length}|transformers-{transformers.__version__}"

    def cache_key(self, video_sha256: str, text: str) -> str:
        """Entry name for a video file's content and the exact text encoded, under the current encoders."""
        recipe = "|".join([
            str(FEATURE_CACHE_FORMAT), video_sha256, self.visual.identity, f"k={self.features.keyframes}",
            self.text_identity, hashlib.sha256(text.encode("utf-8")).hexdigest(),
        ])
        return f"{video_sha256[:16]}.{hashlib.sha256(recipe.encode()).hexdigest()[:24]}"

    def _cache_get(self, key: str) -> dict[str, Any] | None:
        file = self.cache_root / f"{key}.npz"
        if not file.is_file():
            return None
        try:
            with np.load(file, allow_pickle=False) as data:
                return {
                    "frames": np.asarray(data["frames"], dtype=np.float32),
                    "frame_times": np.asarray(data["frame_times"], dtype=np.float32),
                    "tokens": np.asarray(data["tokens"], dtype=np.float32),
                    "token_text": json.loads(str(data["token_text"])),
                }
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            logger.warning("dropping unreadable feature cache entry %s: %s", file, exc)
            file.unlink(missing_ok=True)
            return None

    def _cache_put(self, key: str, arrays: dict[str, Any]) -> None:
        from encoders.cache_files import save_npz_atomic

        save_npz_atomic(self.cache_root / f"{key}.npz", frames=arrays["frames"], frame_times=arrays["frame_times"],
                        tokens=arrays["tokens"], token_text=np.array(json.dumps(arrays["token_text"], ensure_ascii=False)))

    # --- extraction -----------------------------------------------------------------------------------------------

    def enrich(self, entries: Sequence[VideoEntry]) -> list[EnrichedText]:
        """Link and enrich the composed texts of ``entries`` (one graph round trip)."""
        from encoders.linking import link_mentions

        texts = [compose_text(e) for e in entries]
        return self.enricher.run(texts, link_mentions(texts, self.linker))

    def _attach_caption_states(self, enriched: Sequence[EnrichedText], digests: Sequence[str | None],
                               results: list[Any], text_batch_size: int) -> None:
        """``caption_states``: give each extracted video the token states of its caption encoded on its own. Without
        enrichment those are its tokens already; with it they are read from (or encoded into) the cache entry the
        caption-only ablation's features use, keyed by the same file digest and caption, so neither the linking nor
        the file hashing is done again."""
        done = [i for i, r in enumerate(results) if isinstance(r, VideoFeatures)]
        if not self.features.enrich:
            for i in done:
                results[i].caption_tokens = results[i].tokens
            return
        keys = {i: self.cache_key(digests[i], enriched[i].caption) for i in done}
        cached = {i: self._cache_get(keys[i]) for i in done}
        misses = [i for i in done if cached[i] is None]
        if misses:
            encoded = self.text.encode([enriched[i].caption for i in misses], batch_size=text_batch_size)
            for j, i in enumerate(misses):
                cached[i] = {"frames": results[i].frames, "frame_times": results[i].frame_times,
                             "tokens": encoded.token_states[j], "token_text": list(encoded.tokens[j])}
                self._cache_put(keys[i], cached[i])
        for i in done:
            results[i].caption_tokens = np.asarray(cached[i]["tokens"], dtype=np.float32)

    def extract(
        self, entries: Sequence[VideoEntry], *, progress: bool = False, text_batch_size: int = 32
    ) -> list[VideoFeatures | FeatureFailure]:
        """Features only: see :meth:`extract_with_text`."""
        return self.extract_with_text(entries, progress=progress, text_batch_size=text_batch_size)[0]

    def extract_with_text(
        self, entries: Sequence[VideoEntry], *, progress: bool = False, text_batch_size: int = 32
    ) -> tuple[list[VideoFeatures | FeatureFailure], list[EnrichedText]]:
        """One ``VideoFeatures`` (or ``FeatureFailure``) per entry, in order, and each entry's ``EnrichedText`` (which
        carries its linked mentions, for the graph write-back).

        Shapes: ``frames`` K × D_v (K ≤ ``keyframes``), ``tokens`` L × D_t (L ≤ ``text_max_length``), ``entities``
        E × 64 (affirmed linked entities that have a GNN embedding; E = 0 before the R-GCN has run), ``metadata`` the
        standard vector. Labels come from the manifest; disease labels are restricted to the graph's profile labels.

        Raises:
            GraphUnavailable: Neo4j cannot be reached (a per-video problem never raises; it becomes a FeatureFailure).
            ModelNotFound: an encoder cannot be loaded.
        """
        t = self.timings
        started = time.perf_counter()
        enriched = self.enrich(entries)
        t.link_enrich_s += time.perf_counter() - started
        # The text each entry's token states are encoded from, and cached by.
        texts = [e.text if self.features.enrich else e.caption for e in enriched]
        results: list[VideoFeatures | FeatureFailure | None] = [None] * len(entries)
        started = time.perf_counter()
        hashed, keys, parts = self._read_cache(entries, texts, results)
        digests = [h.sha256 if h is not None else None for h in hashed]
        t.hash_s += time.perf_counter() - started
        hits = sum(p is not None for p in parts)
        t.cache_hits += hits
        encoded = self._encode_misses(entries, texts, hashed, parts, results, progress, text_batch_size)
        started = time.perf_counter()
        for i in encoded:
            self._cache_put(keys[i], parts[i])  # type: ignore[arg-type]
        for i, entry in enumerate(entries):
            if results[i] is None:
                results[i] = self._assemble(entry, parts[i], enriched[i])  # type: ignore[arg-type]
        t.assemble_s += time.perf_counter() - started
        if self.features.caption_states:
            started = time.perf_counter()
            self._attach_caption_states(enriched, digests, results, text_batch_size)
            t.text_s += time.perf_counter() - started

        failures = [r for r in results if isinstance(r, FeatureFailure)]
        t.videos += len(entries)
        t.failures += len(failures)
        for f in failures:
            logger.warning("video %s: no features (%s)", f.video_id, f.reason)
        logger.info("features for %d videos (%d from cache, %d failed)", len(entries), hits, len(failures))
        return results, enriched  # type: ignore[return-value]

    def _read_cache(self, entries: Sequence[VideoEntry], texts: Sequence[str], results: list[Any]
                    ) -> tuple[list[HashedFile | None], list[str | None], list[dict[str, Any] | None]]:
        """Per entry, its file checked and hashed (:func:`encoders.media.hash_media`), its cache key and its cached
        parts (None on a miss). A file that is refused or cannot be read becomes a ``FeatureFailure`` in ``results``."""
        limits = MediaLimits.from_settings(self.settings)
        hashed: list[HashedFile | None] = [None] * len(entries)
        keys: list[str | None] = [None] * len(entries)
        parts: list[dict[str, Any] | None] = [None] * len(entries)
        for i, entry in enumerate(entries):
            try:
                # Checked (a regular file within the limits) before a byte is read, and read within the video's
                # deadline, which decoding then shares.
                hashed[i] = hash_media(entry.path, limits, timeout_s=self.settings.decode_timeout_s)
            except VideoDecodeError as exc:
                results[i] = FeatureFailure(entry.id, str(exc))
                continue
            keys[i] = self.cache_key(hashed[i].sha256, texts[i])
            parts[i] = self._cache_get(keys[i])
        return hashed, keys, parts

    def _encode_misses(self, entries: Sequence[VideoEntry], texts: Sequence[str], hashed: Sequence[HashedFile | None],
                       parts: list[dict[str, Any] | None], results: list[Any], progress: bool,
                       text_batch_size: int) -> list[int]:
        """Encode the keyframes and texts of the entries the cache missed into ``parts``; a video that does not decode
        becomes a ``FeatureFailure`` in ``results``. Returns the indices encoded (to be cached)."""
        from encoders.visual import encode_videos
        from tqdm.auto import tqdm

        t = self.timings
        misses = [i for i in range(len(entries)) if results[i] is None and parts[i] is None]
        visual: dict[int, Any] = {}
        show = progress and sys.stderr.isatty()
        started = time.perf_counter()
        # Decoded by several threads, encoded a window of videos at a time (encoders.visual.encode_videos).
        with tqdm(total=len(misses), desc="keyframes+CNN", unit="video", disable=not show, leave=False) as bar:
            encoded_videos = encode_videos([hashed[i] for i in misses], self.visual, self.visual_cache,
                                           k=self.features.keyframes, timeout_s=self.settings.decode_timeout_s,
                                           workers=self.settings.decode_threads, decoder=self.keyframes,
                                           on_done=bar.update, limits=MediaLimits.from_settings(self.settings))
        for i, outcome in zip(misses, encoded_videos):
            if isinstance(outcome, VideoDecodeError):
                results[i] = FeatureFailure(entries[i].id, str(outcome))
            else:
                visual[i] = outcome
        t.visual_s += time.perf_counter() - started

        to_encode = [i for i in misses if results[i] is None]
        started = time.perf_counter()
        if to_encode:
            encoded = self.text.encode([texts[i] for i in to_encode], batch_size=text_batch_size)
            for j, i in enumerate(to_encode):
                parts[i] = {
                    "frames": np.asarray(visual[i].features, dtype=np.float32),
                    "frame_times": np.asarray(visual[i].timestamps_s, dtype=np.float32),
                    "tokens": encoded.token_states[j],
                    "token_text": list(encoded.tokens[j]),
                }
        t.text_s += time.perf_counter() - started
        return to_encode

    def _assemble(self, entry: VideoEntry, part: dict[str, Any], enriched: EnrichedText) -> VideoFeatures | FeatureFailure:
        """One video's features from its encoded ``part`` (keyframes, token states), its linking and enrichment, and
        the manifest's metadata and labels (disease labels restricted to the graph's profile labels)."""
        try:
            return VideoFeatures(
                video_id=entry.id,
                frames=part["frames"],
                frame_times=part["frame_times"],
                tokens=part["tokens"],
                token_text=part["token_text"],
                entities=enriched.gnn_embeddings.reshape(-1, GNN_DIM),
                entity_ids=enriched.entity_ids,
                # The graph's neighbours are enrichment: the caption-only ablation gets none of them.
                related_ids=enriched.related_labels if self.features.enrich else [],
                metadata=metadata_vector(duration_s=entry.duration_s, platform=entry.platform,
                                         published_hour=_published_hour(entry), author_followers=entry.author_followers),
                diseases=([d for d in entry.diseases if d in self._label_ids] if entry.diseases is not None else None),
                popularity=entry.popularity,
                quality=entry.quality,
                synthetic=entry.synthetic,
                diseases_weak=entry.diseases_weak,
                raters=entry.raters or 0,
                visual_model=self.visual.features_name,
                text_model=self.text.name,
            )
        except ValueError as exc:  # e.g. a video with no frame at all: not worth failing the batch for
            return FeatureFailure(entry.id, str(exc))


# --- a manifest's features (what `ovp train`, `ovp evaluate` and `ovp ablate` extract) ---------------------------


def encoder_threads() -> int:
    """Intra-op threads for the encoders: every core up to 2 (the ResNet and BERT passes scale; more contend)."""
    return max(1, min(2, os.cpu_count() or 1))


@dataclass
class ManifestFeatures:
    """Features of a manifest's videos (enriched, and caption-only when asked), with failures and stage timings."""

    items: list[VideoFeatures]
    caption_only: list[VideoFeatures]
    failures: list[FeatureFailure]
    label_map: LabelMap
    timings: dict[str, Any]
    seconds: float

    @property
    def synthetic(self) -> bool:
        return any(it.synthetic for it in self.items)


def feature_settings_for(settings: Settings, overrides: dict[str, Any]) -> FeatureSettings:
    """The ``FeatureSettings`` a model trained with ``overrides`` (``FusionConfig`` fields) needs: ``settings``' own,
    with the caption encoded on its own as well when the model reads that (``FusionConfig.reads_caption_alone``)."""
    # One placeholder label: the label map is not known yet, and what the model reads does not depend on its size.
    config = FusionConfig(**{"n_diseases": 1, **overrides})
    return FeatureSettings.from_settings(settings, caption_states=config.reads_caption_alone)


def manifest_features(
    manifest: Path,
    settings: Settings,
    feature_settings: FeatureSettings | None = None,
    *,
    caption_only: bool = False,
    progress: bool = True,
) -> ManifestFeatures:
    """Read ``manifest`` and extract its videos' features (through the feature cache) with one ``FeatureExtractor``.

    Raises:
        ManifestError: the manifest is malformed.
        GraphUnavailable: Neo4j cannot be reached.
        ValueError: no video of the manifest could be read.
    """
    started = time.perf_counter()
    entries = read_manifest(manifest)
    fs = feature_settings or FeatureSettings.from_settings(settings)
    with Graph.connect(settings) as graph, torch_threads(encoder_threads()):
        extractor = FeatureExtractor(graph, settings, fs)
        results = extractor.extract(entries, progress=progress)
        caption: list[Any] = []
        if caption_only:
            extractor.features = replace(fs, enrich=False)
            caption = extractor.extract(entries, progress=progress)
    items = [r for r in results if isinstance(r, VideoFeatures)]
    failures = [r for r in results if isinstance(r, FeatureFailure)]
    if not items:
        raise ValueError(f"no video of {manifest} could be read ({len(failures)} failures; first: {failures[0].reason})")
    return ManifestFeatures(
        items=items,
        caption_only=[r for r in caption if isinstance(r, VideoFeatures)],
        failures=failures,
        label_map=extractor.label_map,
        timings=extractor.timings.to_dict(),
        seconds=time.perf_counter() - started,
    )
