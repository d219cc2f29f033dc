"""From manifest entries to ``VideoFeatures``: keyframes → ResNet, caption → links → enrichment → BERT states, GNN
embeddings of the linked entities, metadata and labels.

:class:`FeatureExtractor` loads the visual encoder, the linker (knowledge base read from the graph) and the text encoder
once; :meth:`FeatureExtractor.extract` turns a batch of :class:`fusion.manifest.VideoEntry` into one
``VideoFeatures`` or :class:`FeatureFailure` per entry (a video that does not decode never kills the batch).

The expensive parts of a video's features (keyframe features and token states) are cached as one ``.npz`` per video
under ``<OVP_HOME>/cache/features/``, keyed by the SHA-256 of the video file, the SHA-256 of the exact text encoded and
the versions of both encoders, so ``ovp train``, ``ovp evaluate`` and ``ovp ablate`` on one manifest compute them
once. The cheap parts (links, enrichment, GNN embeddings, metadata, labels) are recomputed on every call, so a rebuilt
graph or new GNN embeddings are always picked up.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from encoders.enrichment import GNN_DIM, EnrichedText, EnrichmentConfig, KnowledgeEnricher
from fusion.manifest import VideoEntry
from fusion.records import LabelMap, VideoFeatures, metadata_vector
from ovp.errors import VideoDecodeError
from ovp.settings import Settings

logger = logging.getLogger(__name__)

__all__ = [
    "FEATURE_CACHE_FORMAT",
    "FeatureSettings",
    "FeatureFailure",
    "StageTimings",
    "FeatureExtractor",
    "compose_text",
    "profile_label_map",
]

#: Bumped when the stored layout or what goes into the cached arrays changes, so old entries stop matching.
FEATURE_CACHE_FORMAT = 1

#: The profile-label diseases, in id order: the classification targets.
LABEL_QUERY = """
MATCH (d:Disease {profile_label: true})
RETURN d.id AS id, d.name AS name
ORDER BY id
"""


#: Written beside a trained model by ``ovp train``.
MODEL_FEATURES_FILE = "features.json"


@dataclass(frozen=True)
class FeatureSettings:
    """What shapes the features (saved with a trained model as ``features.json`` so evaluation extracts the same).

    Attributes:
        keyframes: K keyframes per video (``OVP_KEYFRAMES``).
        resnet_arch, resnet_weights: the visual encoder (``OVP_RESNET_ARCH``, ``OVP_RESNET_WEIGHTS``).
        text_model: the text encoder directory ("" = all-MiniLM-L6-v2).
        text_max_length: token positions per text (256: the caption and its annotations fit; MiniLM has 512).
        enrich: append graph annotations to the text (False = the caption-only ablation).
        enrichment: the bounds of the annotations.
        separate_knowledge: encode the caption and its annotations as two texts and join their token states
            (``[CLS] caption [SEP] [CLS] annotations [SEP]``), so the caption's states do not depend on the knowledge
            appended to it; off (one text, the caption's tokens attend to the annotations). A development-set probe
            (ninth round): a quality ridge on the caption's own states reached QWK 0.682 encoded alone, 0.667 as the
            prefix of the enriched text. But the full model on that set's folds (generator 2, seed 0) reached
            0.773 / 0.341 / 0.661 with it against 0.774 / 0.345 / 0.677 without: quality lower, so it stays off.
            Sixteenth round, on a set where no-enrichment leads on quality (``--seed 5``, training seeds 0 and 1):
            quality QWK +0.019 (both seeds), disease -0.003, popularity Spearman -0.017. Still off, because the
            rule written before that run allowed popularity to fall by 0.010 at most (README).
        caption_states: also encode each caption on its own and keep those states beside the joint ones
            (``VideoFeatures.caption_tokens``; the caption-only ablation's token states, shared with it through the
            cache), for a model that reads them (``FusionConfig.reads_caption_alone``), which is when
            ``fusion.ablation.feature_settings_for`` turns it on (one more cache lookup, or text pass, over the
            captions; the linking is not repeated); off otherwise.
    """

    keyframes: int = 8
    resnet_arch: str = "resnet50"
    resnet_weights: str = ""
    text_model: str = ""
    text_max_length: int = 256
    enrich: bool = True
    enrichment: EnrichmentConfig = field(default_factory=EnrichmentConfig)
    separate_knowledge: bool = False
    caption_states: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "FeatureSettings":
        """The feature settings ``settings`` describe, with ``overrides`` applied."""
        base = cls(keyframes=settings.keyframes, resnet_arch=settings.resnet_arch,
                   resnet_weights=settings.resnet_weights, text_model=settings.text_model)
        return replace(base, **overrides) if overrides else base

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FeatureSettings":
        values = dict(data)
        # Saved before ``caption_states`` existed: those models' features carry no caption-alone states.
        values.setdefault("caption_states", False)
        values["enrichment"] = EnrichmentConfig(**values.get("enrichment", {}))
        return cls(**values)

    @classmethod
    def for_model(cls, model_dir: Path, settings: Settings) -> "FeatureSettings":
        """The feature settings a trained model was trained with (``features.json`` beside it), so inference extracts
        exactly what training saw; the current settings for a model directory without that file."""
        file = Path(model_dir) / MODEL_FEATURES_FILE
        if file.is_file():
            return cls.from_dict(json.loads(file.read_text(encoding="utf-8")))
        return cls.from_settings(settings)


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
    visual_s: float = 0.0  # decode + keyframes + ResNet (cache misses only)
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


def compose_text(entry: VideoEntry) -> str:
    """The text that is linked and encoded for a video: title, caption, and the hashtags the caption does not show."""
    tags = [t if t.startswith("#") else f"#{t}" for t in entry.hashtags]
    missing = [t for t in tags if t not in entry.caption]
    parts = [entry.title.strip(), entry.caption.strip(), " ".join(missing)]
    return "\n".join(p for p in parts if p)


def profile_label_map(graph: Any) -> LabelMap:
    """The ``LabelMap`` of the graph's profile-label diseases (``MATCH (d:Disease {profile_label: true})``), by id.

    Raises:
        ValueError: the graph has no profile-label disease (build it with ``ovp kg build``).
        GraphUnavailable: Neo4j cannot be reached.
    """
    rows = graph.read(LABEL_QUERY)
    if not rows:
        raise ValueError("the graph has no Disease with profile_label: true — build it with `ovp kg build`")
    return LabelMap(tuple(r["id"] for r in rows), {r["id"]: r["name"] or r["id"] for r in rows})


def _published_hour(entry: VideoEntry) -> float:
    # The hour on the publisher's clock (the offset in the manifest), which is what audiences react to.
    t = entry.published_at
    return t.hour + t.minute / 60.0


class FeatureExtractor:
    """Loads the encoders once and extracts features for batches of manifest entries.

    Args:
        graph: the knowledge graph (``kg_builder.graph.Graph``): the linker's knowledge base, the enrichment and the
            label map are read from it.
        settings: device, cache and timeout settings (``Settings.from_env()`` when omitted).
        features: what shapes the features (``FeatureSettings.from_settings(settings)`` when omitted).
        visual_seed: seed of the visual encoder's random weights when no ImageNet weights are found.
    """

    def __init__(
        self,
        graph: Any,
        settings: Settings | None = None,
        features: FeatureSettings | None = None,
        *,
        visual_seed: int = 0,
    ) -> None:
        from encoders.feature_cache import FeatureCache
        from encoders.linker import load_linker
        from encoders.text import TextEncoder, TextEncoderConfig
        from encoders.visual import VisualEncoder, VisualEncoderConfig

        started = time.perf_counter()
        self.graph = graph
        self.settings = settings or Settings.from_env()
        self.features = features or FeatureSettings.from_settings(self.settings)
        self.visual = VisualEncoder(VisualEncoderConfig(
            arch=self.features.resnet_arch, weights=self.features.resnet_weights, device=self.settings.device, seed=visual_seed,
        ))
        self.visual_cache = FeatureCache.from_settings(self.settings)
        self.text = TextEncoder(TextEncoderConfig(
            model=self.features.text_model, device=self.settings.device, max_length=self.features.text_max_length,
        ))
        # The same linker as the API, worker and CLI (dictionary + semantic fallback), sharing this text encoder.
        self.linker = load_linker(self.settings, graph, semantic=True, encoder=self.text)
        self.enricher = KnowledgeEnricher(graph, self.features.enrichment)
        self.label_map = profile_label_map(graph)
        self.cache_root = self.settings.cache_dir / "features"
        self.timings = StageTimings(load_s=time.perf_counter() - started)

    # --- identity and cache ---------------------------------------------------------------------------------------

    @property
    def text_identity(self) -> str:
        """What the token states depend on besides the text: the model directory, max length, transformers version."""
        import transformers

        return f"{self.text.model_path}|L{self.features.text_max_length}|transformers-{transformers.__version__}"

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
        self.cache_root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_root, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, frames=arrays["frames"], frame_times=arrays["frame_times"], tokens=arrays["tokens"],
                         token_text=np.array(json.dumps(arrays["token_text"], ensure_ascii=False)))
            os.replace(tmp, self.cache_root / f"{key}.npz")  # readers never see half a file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # --- extraction -----------------------------------------------------------------------------------------------

    def enrich(self, entries: Sequence[VideoEntry]) -> list[EnrichedText]:
        """Link and enrich the composed texts of ``entries`` (one graph round trip)."""
        from encoders.linker import link_mentions

        texts = [compose_text(e) for e in entries]
        return self.enricher.run(texts, link_mentions(texts, self.linker))

    def _encode_apart(self, enriched: Sequence[EnrichedText], batch_size: int) -> tuple[list[np.ndarray], list[list[str]]]:
        """``separate_knowledge``: per text, the caption's token states then its annotations' (none without any)."""
        captions = self.text.encode([e.caption for e in enriched], batch_size=batch_size)
        with_notes = [j for j, e in enumerate(enriched) if e.annotations]
        notes = self.text.encode([" | ".join(enriched[j].annotations) for j in with_notes], batch_size=batch_size)
        states, tokens = list(captions.token_states), [list(t) for t in captions.tokens]
        for n, j in enumerate(with_notes):
            states[j] = np.concatenate([states[j], notes.token_states[n]], axis=0)
            tokens[j] = tokens[j] + list(notes.tokens[n])
        return states, tokens

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
        from encoders.media import HashedFile, MediaLimits, hash_media
        from encoders.visual import encode_videos
        from tqdm.auto import tqdm

        t = self.timings
        started = time.perf_counter()
        enriched = self.enrich(entries)
        t.link_enrich_s += time.perf_counter() - started

        apart = self.features.enrich and self.features.separate_knowledge
        # The text each entry's cached token states are keyed by (what is encoded, and how).
        if not self.features.enrich:
            texts = [e.caption for e in enriched]
        else:
            texts = [f"apart|{e.text}" if apart else e.text for e in enriched]
        results: list[VideoFeatures | FeatureFailure | None] = [None] * len(entries)
        parts: list[dict[str, Any] | None] = [None] * len(entries)
        keys: list[str | None] = [None] * len(entries)
        digests: list[str | None] = [None] * len(entries)
        hashed: list[HashedFile | None] = [None] * len(entries)
        limits = MediaLimits.from_settings(self.settings)
        started = time.perf_counter()
        for i, entry in enumerate(entries):
            try:
                # Checked (a regular file within the limits) before a byte is read, and read within the video's
                # deadline, which decoding then shares.
                hashed[i] = hash_media(entry.path, limits, timeout_s=self.settings.decode_timeout_s)
            except VideoDecodeError as exc:
                results[i] = FeatureFailure(entry.id, str(exc))
                continue
            digests[i] = hashed[i].sha256
            keys[i] = self.cache_key(digests[i], texts[i])
            parts[i] = self._cache_get(keys[i])
        t.hash_s += time.perf_counter() - started
        hits = sum(p is not None for p in parts)
        t.cache_hits += hits

        misses = [i for i in range(len(entries)) if results[i] is None and parts[i] is None]
        visual: dict[int, Any] = {}
        show = progress and sys.stderr.isatty()
        started = time.perf_counter()
        # Decoded by several threads, encoded a window of videos at a time (encoders.visual.encode_videos).
        with tqdm(total=len(misses), desc="keyframes+ResNet", unit="video", disable=not show, leave=False) as bar:
            encoded_videos = encode_videos([hashed[i] for i in misses], self.visual, self.visual_cache,
                                           k=self.features.keyframes, timeout_s=self.settings.decode_timeout_s,
                                           workers=self.settings.decode_threads, on_done=bar.update, limits=limits)
        for i, outcome in zip(misses, encoded_videos):
            if isinstance(outcome, VideoDecodeError):
                results[i] = FeatureFailure(entries[i].id, str(outcome))
            else:
                visual[i] = outcome
        t.visual_s += time.perf_counter() - started

        to_encode = [i for i in misses if results[i] is None]
        started = time.perf_counter()
        if to_encode:
            if apart:
                states, tokens = self._encode_apart([enriched[i] for i in to_encode], text_batch_size)
            else:
                encoded = self.text.encode([texts[i] for i in to_encode], batch_size=text_batch_size)
                states, tokens = encoded.token_states, encoded.tokens
            for j, i in enumerate(to_encode):
                parts[i] = {
                    "frames": np.asarray(visual[i].features, dtype=np.float32),
                    "frame_times": np.asarray(visual[i].timestamps_s, dtype=np.float32),
                    "tokens": states[j],
                    "token_text": list(tokens[j]),
                }
        t.text_s += time.perf_counter() - started

        started = time.perf_counter()
        label_ids = set(self.label_map.disease_ids)
        for i in to_encode:
            self._cache_put(keys[i], parts[i])  # type: ignore[arg-type]
        for i, entry in enumerate(entries):
            if results[i] is not None:
                continue
            p = parts[i]
            assert p is not None
            try:
                results[i] = VideoFeatures(
                    video_id=entry.id,
                    frames=p["frames"],
                    frame_times=p["frame_times"],
                    tokens=p["tokens"],
                    token_text=p["token_text"],
                    entities=enriched[i].gnn_embeddings.reshape(-1, GNN_DIM),
                    entity_ids=enriched[i].entity_ids,
                    # The graph's neighbours are enrichment: the caption-only ablation gets none of them.
                    related_ids=enriched[i].related_labels if self.features.enrich else [],
                    metadata=metadata_vector(duration_s=entry.duration_s, platform=entry.platform,
                                             published_hour=_published_hour(entry), author_followers=entry.author_followers),
                    diseases=[d for d in entry.diseases if d in label_ids] if entry.diseases is not None else None,
                    popularity=entry.popularity,
                    quality=entry.quality,
                    synthetic=entry.synthetic,
                )
            except ValueError as exc:  # e.g. a video with no frame at all: not worth failing the batch for
                results[i] = FeatureFailure(entry.id, str(exc))
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
