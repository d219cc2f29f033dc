"""``FusionConfig``: every hyperparameter of the fusion model and its training, in one JSON-serialisable object.

Options an experiment rejected are deleted, not kept switched off; ``docs/fusion-history.md`` says what each was and
why it lost. A saved model whose ``config.json`` still sets one of them to anything but the behaviour now built in
cannot be rebuilt and is refused with a message that names the option (:data:`RETIRED`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from fusion.records import METADATA_DIM, LabelMap, VideoFeatures

TASKS = ("disease", "popularity", "quality")
FUSIONS = ("cross_attention", "concat")
TASK_WEIGHTINGS = ("equal", "uncertainty")
DISEASE_VISUAL_PATHS = ("none", "mil")
AT_LEAST_ONE_RULES = ("auto", "on", "off")


#: Options whose default changed after models were first saved, with the value that reproduces a model saved without
#: them (its ``config.json`` lacks the key). An option whose old behaviour is still its default needs no entry: the
#: field's default already gives it.
LEGACY_DEFAULTS: dict[str, Any] = {
    "modality_dropout": 0.0, "task_readout": False, "task_weights": None, "head_refit_epochs": 0,
    "quality_skip": False, "quality_skip_caption_only": False, "quality_skip_caption_alone": False,
    "disease_mentions": False, "disease_related": False, "disease_visual": "none", "disease_at_least_one": "off",
    "disease_context": False, "quality_caption_readout": False, "concat_base": False,
    "popularity_cascade": False, "disease_head_decay": None,
}

#: Retired options, each with the one behaviour the code still has. A saved config may name them (models saved before
#: they were retired do) only with that value; any other value was a model this code can no longer build.
RETIRED: dict[str, Any] = {
    "task_attention": False, "mean_pool": False, "detach_popularity": False, "popularity_skip": False,
    "quality_readout_caption_alone": False, "popularity_head_decay": None, "weight_ema_epochs": None,
    "gradient_surgery": "none", "refit_attention": False, "distill": False, "distill_anneal_epochs": None,
    "disease_loss": "mean", "quality_head": "ordinal", "popularity_head": "mlp", "head_refit_init": "continue",
}

#: Retired values of options that remain.
RETIRED_VALUES: dict[str, tuple[Any, ...]] = {"disease_visual": ("attention",)}


def _retired(name: str, value: Any) -> ValueError:
    return ValueError(f"the model was trained with {name}={value!r}, which this version no longer has (retired: "
                      "docs/fusion-history.md says why); retrain it with `ovp train`")


@dataclass(frozen=True)
class FusionConfig:
    """Hyperparameters the model, the loss and the training loop read from; saved as ``config.json`` with the model.

    Raises:
        ValueError: from ``__post_init__`` when two options conflict (the message names both) or a value is out of range.
    """

    # Input widths (what the encoders produce); ``from_items`` reads them off the data.
    d_visual: int = 2048  # ResNet-50 pooled features (1280 for EfficientNet-Lite0, 512 for ResNet-18)
    d_text: int = 384  # all-MiniLM-L6-v2 hidden size (512 for bge-small-zh-v1.5)
    # The encoders behind those inputs (``VideoFeatures.visual_model`` / ``text_model``, read off the data too): the
    # model refuses features of other encoders. "" = not recorded (models saved before these existed).
    visual_features: str = ""
    text_features: str = ""
    d_graph: int = 64
    d_meta: int = METADATA_DIM
    n_diseases: int = 0
    # Model
    width: int = 256  # also the fused-embedding size, which the Neo4j vector index is declared with
    heads: int = 4
    dropout: float = 0.1
    # Modality dropout: while training, each item's keyframes, tokens and entities are each hidden with this
    # probability (never all three of an item at once), so the fused model cannot lean on one modality and still
    # works when a modality is weak or missing (a video without readable frames, a caption that names nothing).
    modality_dropout: float = 0.2
    # 'cross_attention' (the model) or 'concat' (the ablation baseline: masked means of the projections, concatenated).
    fusion: str = "cross_attention"
    # One readout per task (its own attention pools over keyframes, tokens and entities, gates and LayerNorm) on the
    # shared cross-modal attention, instead of one readout all heads share: disease needs the frames that show a cue,
    # quality how much of the video is clinical, and one set of pooling weights has to serve both. Ignored by 'concat'.
    task_readout: bool = True
    # Cross-attention on top of the concatenation baseline: each task's embedding is the 'concat' fusion's plus
    # tanh(α_t) times its cross-attended readout, α_t learned from 0 (the gate of Flamingo's cross-attention layers).
    # Training starts from the baseline and opens the attention path only as far as it lowers the loss: without the
    # baseline underneath, the concatenation ablation was ahead of cross-attention on every task. Ignored by 'concat'.
    concat_base: bool = True
    # Ablation switches: a switched-off modality is masked out everywhere, so the model never sees it.
    use_visual: bool = True
    use_text: bool = True
    use_graph: bool = True
    use_metadata: bool = True
    # Tasks and loss
    tasks: tuple[str, ...] = TASKS
    # 'equal': the sum of the task losses times ``task_weights``. 'uncertainty': learned homoscedastic uncertainty
    # weighting (Kendall, Gal & Cipolla, CVPR 2018; ``fusion.losses``), the alternative to try on real labels. On the
    # synthetic set it inflated the small label-averaged disease loss until the total went negative and the other
    # heads overfit, so the fixed weights are the default.
    task_weighting: str = "equal"
    # Fixed multipliers of the task losses, e.g. {"disease": 4.0}; a task not named gets 1 (under 'uncertainty' the
    # learned weighting then acts on the multiplied losses). Disease ×4: its BCE is a mean over ~20 labels, most of
    # them 0, so unweighted it is several times smaller than the other two losses and the shared trunk follows them.
    # Popularity ×0.25: engagement is mostly hidden virality, so its loss stays large however well the model reads the
    # video, and at full weight it pulls the shared trunk toward fitting that noise.
    task_weights: dict[str, float] | None = dataclasses.field(default_factory=lambda: {"disease": 4.0, "popularity": 0.25})
    # A linear path to the quality score beside the head on the fused embedding: a ridge regression of GQS on the
    # training videos' mean keyframe and mean token features (standardised; penalty ``quality_skip_ridge``), solved in
    # closed form when training starts and then fixed, times a learned scale and shift; the fusion model learns the
    # remainder. Quality shows in proportions (how much of a video is clinical footage, how many cue phrases the
    # caption has), which means keep and attention pools lose. Switched-off modalities are left out of the means.
    quality_skip: bool = True
    quality_skip_ridge: float = 300.0
    # The skip's token mean covers the caption's own tokens only (up to the first [SEP]), not the knowledge appended
    # after them: that text is the same for every video about a disease and dilutes the caption's quality cues
    # (clickbait, a doctor, a source).
    quality_skip_caption_only: bool = True
    # The skip's token mean is the caption encoded on its own, without the knowledge (``VideoFeatures.caption_tokens``,
    # extracted with ``FeatureSettings.caption_states``), rather than the caption's prefix of the joint text, whose
    # states have attended to that knowledge; every other path keeps the joint states. Takes precedence over
    # ``quality_skip_caption_only``. Why: the caption-only ablation kept leading the full model on quality.
    quality_skip_caption_alone: bool = True
    # A direct path from entity linking to the disease logits: per label j, learned log-odds b_j + a_j·[the caption's
    # affirmed linked entities include j], starting at the training set's log-odds of j among videos that do not and
    # that do name it; the head on the fused embedding starts at zero and learns what it can add. The fused embedding
    # pools the linked entities and tokens into one vector and loses which label was named. It reads the linked ids,
    # not their GNN embeddings, so the no-GNN ablation keeps it.
    disease_mentions: bool = True
    # With ``disease_mentions``: the prior also reads the labels the graph links to the caption's affirmed phenotypes
    # (a disease HAS_PHENOTYPE a symptom the caption describes; ``VideoFeatures.related_ids``, from the enrichment), as
    # c_j·[j related]·[j not named], starting at the training set's log-odds of j among videos that relate j and do not
    # name it. A caption that names no disease but says "看东西模糊，还怕光" points to the few diseases with both symptoms.
    disease_related: bool = True
    # 'mil': a path from the keyframes to the disease logits that only the disease loss trains (its own projection of
    # the raw keyframe features, a score per frame and label, a smooth maximum over the frames; multiple-instance
    # learning: a disease shows in some frames, the presenter and the slides in the rest), starting at zero. 'none':
    # the frames reach the disease head only through the shared trunk, which the quality and popularity losses train
    # too, and which did not carry the frames' disease cues for videos whose caption names none of their labels.
    disease_visual: str = "mil"
    # The disease decision rule beside the 0.5 threshold: when no label reaches it, predict the most probable label
    # anyway. 'auto' turns it on when every disease-labelled training video has at least one label — such a model
    # never saw a video about none of its diseases, so an empty prediction is under-confidence, not an answer it
    # learned — and off as soon as one training video is labelled ``[]``; 'on' and 'off' force it. The model keeps
    # the outcome (``FusionModel.at_least_one``), its predictions carry it (``Prediction.at_least_one``), and every
    # metric, checkpoint choice, bootstrap and PREDICTS edge uses it (``fusion.metrics.disease_decisions``). Every
    # SYNTHETIC video has 1–2 labels by construction, so 'auto' turns it on there.
    disease_at_least_one: str = "auto"
    # A path from the mean raw token feature and mean raw entity embedding to the disease logits that only the disease
    # loss trains (``fusion.model.ContextDiseasePath``), starting at zero, beside the jointly trained trunk: the full
    # model ranked diseases below the concatenation, no-visual and single-task models, which read these means directly.
    disease_context: bool = True
    # With per-task readouts, the quality readout's text pool covers the caption's own tokens only, not the knowledge
    # appended after them (the same for every video about a disease); the attention blocks still read it all.
    quality_caption_readout: bool = True
    # A task cascade into popularity: a ridge regression of standardised engagement on the metadata and the disease
    # labels (multi-hot), solved in closed form on the training videos (penalty ``popularity_cascade_ridge``) and then
    # fixed, read at prediction time with the disease head's probabilities (gradient stopped, so the popularity loss
    # never bends the disease head), times a learned scale and shift; the head on the fused embedding starts at zero
    # and learns what it can add. Engagement's learnable part is the audience, the platform and the topic (which
    # disease a video is about, ``docs/demo-data.md``); the topic is what the disease head reads from the video, so the
    # cascade is where the joint model gets something a popularity-only model cannot. Needs metadata or the disease task.
    popularity_cascade: bool = True
    popularity_cascade_ridge: float = 10.0
    # Optimisation
    lr: float = 1e-3
    weight_decay: float = 0.01
    # AdamW weight decay of the disease head on the fused embedding alone (None: ``weight_decay``), in joint training
    # and in the head refit. A strong decay shrinks that head's share of the disease logits toward zero unless the
    # fused embedding earns it, leaving the paths only the disease loss trains (the mention prior, the keyframes' and
    # the caption's own paths) to carry what they can. With lr 2e-3, 10 takes 2 % off the head's weights each step.
    disease_head_decay: float | None = 10.0
    epochs: int = 40
    batch_size: int = 32
    # Early stopping (see ``fusion.training.train``): the checkpoint kept is the one whose validation score, averaged
    # over the last ``score_window`` epochs, is highest; training stops after ``patience`` epochs without a better
    # average, but never before ``min_epochs``. The window is there because popularity Spearman on a small validation
    # set jumps by ±0.1 between epochs, and the floor because disease macro-F1 (at the 0.5 threshold) stays 0 for the
    # first ~10 epochs while the rare labels' probabilities climb — a short patience used to stop before it moved.
    patience: int = 8
    # The tasks whose headline metrics are summed into the early-stopping score (None: every task trained). Leaving
    # popularity out lets the noisiest validation metric (Spearman on ~100 videos moves ±0.1 between epochs) stop
    # deciding which epoch of the shared trunk is kept; its head still refits on its own metric.
    selection_tasks: tuple[str, ...] | None = None
    min_epochs: int = 20
    score_window: int = 3
    grad_clip: float = 1.0
    # Per-task head refit (``fusion.training.refit_heads``), after joint training has chosen the shared trunk's epoch by
    # the summed validation score: the trunk is frozen and each task's own parameters (its head and paths, and its
    # readout when ``task_readout``) train further on that task's loss alone, continuing from the joint checkpoint,
    # each task keeping the epoch of its own best validation metric (the joint checkpoint included, so refitting never
    # lowers a task's validation metric). At most this many epochs; 0 switches the stage off. Why: joint selection
    # picks one epoch for three tasks whose best epochs differ.
    head_refit_epochs: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        for name, value, allowed in (
            ("fusion", self.fusion, FUSIONS),
            ("task_weighting", self.task_weighting, TASK_WEIGHTINGS),
            ("disease_visual", self.disease_visual, DISEASE_VISUAL_PATHS),
            ("disease_at_least_one", self.disease_at_least_one, AT_LEAST_ONE_RULES),
        ):
            if value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of {allowed}")
        if self.task_weights is not None:
            object.__setattr__(self, "task_weights", {str(k): float(v) for k, v in self.task_weights.items()})
            odd = sorted(k for k, v in self.task_weights.items() if k not in TASKS or not v > 0)
            if odd:
                raise ValueError(f"task_weights {self.task_weights} names {odd}: keys must be tasks {TASKS}, values > 0")
        if self.selection_tasks is not None:
            object.__setattr__(self, "selection_tasks", tuple(self.selection_tasks))
            if not self.selection_tasks or any(t not in self.tasks for t in self.selection_tasks):
                raise ValueError(f"selection_tasks={self.selection_tasks!r} must be a non-empty subset of tasks {self.tasks}")
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks={self.tasks!r} must be a non-empty set drawn from {TASKS}")
        if not (self.use_visual or self.use_text or self.use_graph or self.use_metadata):
            raise ValueError("use_visual, use_text, use_graph and use_metadata are all False: the model would have no input")
        if self.fusion == "cross_attention" and not (self.use_visual and (self.use_text or self.use_graph)):
            # Cross-modal attention needs frames on one side and text/entities on the other; without that it is a
            # per-modality pooling with extra parameters, which is what the 'concat' baseline measures honestly.
            raise ValueError(
                "fusion='cross_attention' needs use_visual=True and use_text or use_graph True; "
                f"got use_visual={self.use_visual}, use_text={self.use_text}, use_graph={self.use_graph} — use fusion='concat'"
            )
        if self.popularity_cascade and self.has("popularity") and not (self.use_metadata or self.has("disease")):
            raise ValueError("popularity_cascade=True needs use_metadata=True or the disease task: it would read nothing")
        for name in ("popularity_cascade_ridge", "quality_skip_ridge", "lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if self.fusion == "cross_attention" and self.width % self.heads:
            raise ValueError(f"width={self.width} is not divisible by heads={self.heads}")
        if self.use_metadata and self.d_meta <= 0:
            raise ValueError(f"use_metadata=True conflicts with d_meta={self.d_meta}: set use_metadata=False")
        if "disease" in self.tasks and self.n_diseases <= 0:
            raise ValueError(f"task 'disease' is enabled but n_diseases={self.n_diseases}: give a non-empty label map")
        for name in ("d_visual", "d_text", "d_graph", "width", "heads", "epochs", "batch_size", "patience", "score_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if self.head_refit_epochs < 0:
            raise ValueError(f"head_refit_epochs={self.head_refit_epochs} must be ≥ 0 (0: no refit stage)")
        if self.min_epochs < 0:
            raise ValueError(f"min_epochs={self.min_epochs} must be ≥ 0 (0: stop as soon as patience runs out)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ValueError(f"modality_dropout={self.modality_dropout} must be in [0, 1)")
        if self.disease_head_decay is not None and self.disease_head_decay < 0:
            raise ValueError(f"disease_head_decay={self.disease_head_decay} must be ≥ 0 (None: weight_decay)")

    def has(self, task: str) -> bool:
        """Whether ``task`` is trained and predicted."""
        return task in self.tasks

    @property
    def has_quality_skip(self) -> bool:
        """Whether the model has the quality skip (``quality_skip`` with the quality task)."""
        return self.quality_skip and self.has("quality")

    @property
    def reads_caption_alone(self) -> bool:
        """Whether the model reads the caption encoded on its own (``VideoFeatures.caption_tokens``): its quality skip
        does, with ``quality_skip_caption_alone``. Features for it are extracted with ``FeatureSettings.caption_states``."""
        return self.has_quality_skip and self.quality_skip_caption_alone

    def single_task(self, task: str) -> "FusionConfig":
        """This config for ``task`` alone: what the single-task ablation trains. Its checkpoint is chosen on its own
        task's metric, whatever ``selection_tasks`` says."""
        return self.replace(tasks=(task,), selection_tasks=None)

    def replace(self, **changes: Any) -> "FusionConfig":
        """A copy with ``changes`` applied (and validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tasks"] = list(self.tasks)
        if self.selection_tasks is not None:
            data["selection_tasks"] = list(self.selection_tasks)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FusionConfig":
        """Inverse of ``to_dict``, for any config this code can still build: a key missing from ``data`` takes its
        :data:`LEGACY_DEFAULTS` value (the model was saved before the option existed), a :data:`RETIRED` key is
        dropped when it holds the behaviour now built in.

        Raises:
            ValueError: an unknown key (a config from a newer version should not half-load), or a retired option or
                value the model was trained with (the message names it and says to retrain).
        """
        data = dict(data)
        for name, kept in RETIRED.items():
            value = data.pop(name, kept)
            if value != kept:
                raise _retired(name, value)
        for name, values in RETIRED_VALUES.items():
            if data.get(name) in values:
                raise _retired(name, data[name])
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(data) - names)
        if extra:
            raise ValueError(f"unknown FusionConfig keys {extra}")
        # A config saved before an option existed was trained without it: its old behaviour, not today's default.
        return cls(**{**LEGACY_DEFAULTS, **data})

    @classmethod
    def from_items(cls, items: Sequence[VideoFeatures], label_map: LabelMap, **overrides: Any) -> "FusionConfig":
        """A config whose input widths and ``n_diseases`` match ``items`` and ``label_map``; ``overrides`` set the rest.

        Raises:
            ValueError: ``items`` is empty or its items disagree on a feature width (naming the first odd one).
        """
        if not items:
            raise ValueError("cannot infer feature widths from an empty item list")
        first = items[0]
        for it in items:
            if (it.dims, it.visual_model, it.text_model) != (first.dims, first.visual_model, first.text_model):
                raise ValueError(
                    f"video {it.video_id!r} has widths (visual, text, graph, meta)={it.dims} from "
                    f"{_encoders(it.visual_model, it.text_model)}, but {first.video_id!r} has {first.dims} from "
                    f"{_encoders(first.visual_model, first.text_model)}: extract every video with the same encoders"
                )
        dims = first.dims
        values: dict[str, Any] = dict(
            d_visual=dims[0], d_text=dims[1], d_graph=dims[2], d_meta=dims[3], n_diseases=len(label_map),
            visual_features=first.visual_model, text_features=first.text_model,
        )
        if dims[3] == 0:
            values["use_metadata"] = False
        values.update(overrides)
        return cls(**values)


def _encoders(visual: str, text: str) -> str:
    return f"visual {visual or 'unrecorded'}, text {text or 'unrecorded'}"


def check_compatible(config: FusionConfig, items: Sequence[VideoFeatures], label_map: LabelMap) -> None:
    """Raise ValueError naming the first item whose widths or encoders differ from ``config`` (an encoder left
    unrecorded on either side is not compared), or a label-map size mismatch."""
    if config.n_diseases != len(label_map) and config.has("disease"):
        raise ValueError(f"config.n_diseases={config.n_diseases} but the label map has {len(label_map)} diseases")
    want = (config.d_visual, config.d_text, config.d_graph, config.d_meta)
    for it in items:
        other_visual = bool(config.visual_features and it.visual_model and it.visual_model != config.visual_features)
        other_text = bool(config.text_features and it.text_model and it.text_model != config.text_features)
        if it.dims != want or other_visual or other_text:
            raise ValueError(
                f"video {it.video_id!r} has features of widths (visual, text, graph, meta)={it.dims} from "
                f"{_encoders(it.visual_model, it.text_model)}; the model was trained on {want} from "
                f"{_encoders(config.visual_features, config.text_features)}: extract features with the encoders in "
                "the model's features.json (ovp evaluate and the worker do), or retrain the model on these"
            )
