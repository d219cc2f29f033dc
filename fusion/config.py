"""``FusionConfig``: every hyperparameter of the fusion model and its training, in one JSON-serialisable object."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from fusion.records import METADATA_DIM, LabelMap, VideoFeatures

TASKS = ("disease", "popularity", "quality")
FUSIONS = ("cross_attention", "concat")
TASK_WEIGHTINGS = ("uncertainty", "equal")
DISEASE_REDUCTIONS = ("mean", "sum")
QUALITY_HEADS = ("ordinal", "softmax")
POPULARITY_HEADS = ("mlp", "linear")
REFIT_INITS = ("continue", "fresh")
GRADIENT_SURGERIES = ("none", "pcgrad")
DISEASE_VISUAL_PATHS = ("none", "attention", "mil")
AT_LEAST_ONE_RULES = ("auto", "on", "off")


#: Options added after models were first saved, with the value that reproduces a model saved without them.
LEGACY_DEFAULTS: dict[str, Any] = {"modality_dropout": 0.0, "task_readout": False, "task_weights": None,
                                   "popularity_skip": False, "popularity_head": "mlp", "mean_pool": False,
                                   "head_refit_epochs": 0, "task_attention": False,
                                   "gradient_surgery": "none", "selection_tasks": None,
                                   "refit_attention": False, "quality_skip": False,
                                   "distill": False, "distill_anneal_epochs": None,
                                   "popularity_cascade": False, "disease_mentions": False,
                                   "quality_skip_caption_only": False, "disease_related": False,
                                   "concat_base": False, "disease_visual": "none",
                                   "disease_at_least_one": "off", "disease_context": False,
                                   "quality_caption_readout": False,
                                   "disease_head_decay": None, "quality_skip_caption_alone": False}


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
    fusion: str = "cross_attention"
    # One readout per task (its own attention pools over keyframes, tokens and entities, gates and LayerNorm) on the
    # shared cross-modal attention, instead of one readout all heads share: disease needs the frames that show a cue,
    # quality how much of the video is clinical, and one set of pooling weights has to serve both. Cross-attention
    # fusion only ('concat' has no pools; the option is ignored there).
    task_readout: bool = True
    # One pair of cross-modal attention blocks per task (needs ``task_readout``; ignored by 'concat'): the projections,
    # type embeddings and metadata MLP are shared and trained by all three losses, each task attends and pools with
    # its own blocks, and the head refit (below) trains a task's blocks with its readout and head. Off: it raised
    # quality QWK on the demo set's validation splits (0.652 -> 0.673) but lowered it on the development set
    # (0.621 -> 0.556), and trains ~2.7x slower (bench/fusion_demo.py's docstring, fourth round).
    task_attention: bool = False
    # Readout summaries add the plain mean of the sequence to its attention-weighted sum: attention picks a few
    # positions and so loses proportions (how much of a video is clinical footage), which the mean keeps. Off: on the
    # demo set's validation split it lowered quality QWK (0.573 against 0.626; bench/fusion_demo.py's docstring).
    mean_pool: bool = False
    # Cross-attention fusion on top of the concatenation baseline: each task's embedding is the 'concat' fusion's
    # (masked means of the projections and the metadata summary, concatenated and projected) plus tanh(α_t) times its
    # cross-attended readout, α_t learned and starting at 0 — so training starts from the baseline and opens the
    # attention path only as far as it lowers the loss (the tanh gate of Flamingo's cross-attention layers). Ignored by
    # 'concat'. On since the tenth round: in four cross-fitted runs (the ninth round's declared run and replicate, the
    # development set twice) the 'concat' ablation was ahead of cross-attention fusion on every task; on the
    # development set (generator 2) this moved the full model from 0.759 / 0.331 / 0.678 to 0.774 / 0.345 / 0.677
    # ('concat' 0.781 / 0.345 / 0.685).
    concat_base: bool = True
    use_visual: bool = True
    use_text: bool = True
    use_graph: bool = True
    use_metadata: bool = True
    # Tasks and loss
    tasks: tuple[str, ...] = TASKS
    # 'equal' (sum of the task losses) by default: on the demo set's validation split (3 seeds, bench/fusion_demo.py
    # --select-on val) it gave a validation score of 1.262 against 1.227 for learned uncertainty weighting, which
    # inflated the small label-averaged disease BCE until the total loss went negative and the other heads overfit.
    task_weighting: str = "equal"
    quality_head: str = "ordinal"
    # How the disease BCE is reduced over the labels ('mean' or 'sum'; always a mean over items). With 20 labels the
    # mean is ~20× smaller than the other tasks' losses; 'sum' puts it on their scale (each label counts like a task).
    disease_loss: str = "mean"
    # Stop the popularity loss's gradient at the fused embedding (the head still learns, the shared trunk does not
    # follow it): engagement is mostly noise, and fitting it can pull the trunk away from disease and quality.
    # Ignored when popularity is the only task (the trunk would then never train).
    detach_popularity: bool = False
    # A linear path from the (standardised) metadata straight to the popularity output, beside the head on the fused
    # embedding: the learnable part of engagement is mostly the author's audience and the platform, which the fused
    # embedding otherwise has to carry through its gates and LayerNorm.
    popularity_skip: bool = False
    # A linear path to the quality score beside the head on the fused embedding: a ridge regression of GQS on the
    # training videos' mean keyframe and mean token features (standardised; penalty ``quality_skip_ridge``), solved in
    # closed form when training starts and then fixed, times a learned scale and shift. Quality shows in proportions
    # (how much of a video is clinical footage, how many cue phrases the caption has), which means keep and attention
    # pools lose; such a ridge alone reached QWK 0.648 and 0.681 on the two demo sets' selection splits. Ordinal quality
    # head only (the softmax head has no score to add it to, and ignores the option). The fusion model then learns the remainder. Switched-off modalities are left out of the means, as
    # everywhere else. Alone it raised the full model's quality QWK on every seed of both selection sets (0.642 -> 0.696,
    # 0.586 -> 0.651) but lowered popularity Spearman, and single-task heads gained as much (sixth round); it is on since
    # the ninth round, with the two options below, which together took the full model on the development set (5-fold
    # cross-fitted, seed 0) from 0.644 / 0.208 / 0.574 to 0.723 / 0.306 / 0.660 (bench/fusion_demo.py's docstring).
    quality_skip: bool = True
    quality_skip_ridge: float = 300.0
    # The skip's token mean covers the caption's own tokens only (up to the first [SEP]), not the knowledge enrichment
    # appended after them: that text is the same for every video about a disease and dilutes the caption's quality
    # cues (clickbait, a doctor, a source). On the development set's folds the ridge alone reached QWK 0.667 on the
    # caption part against 0.656 on every token (0.682 on the caption encoded without the enrichment). On since the
    # tenth round: with it the full model's quality QWK on the development set (generator 2) was 0.678, 0.006 behind
    # the caption-only ablation's, where the ninth round's declared run had it 0.067 behind.
    quality_skip_caption_only: bool = True
    # The skip's token mean is the caption encoded on its own, without the knowledge appended (``VideoFeatures.
    # caption_tokens``, extracted with ``FeatureSettings.caption_states``), not the caption's prefix of the joint text,
    # whose states have attended to that knowledge; every other path keeps the joint states. Takes precedence over
    # ``quality_skip_caption_only``. Why: no-enrichment led the full model on quality in three of four declared runs,
    # and on the development set a ridge alone reached QWK 0.682 on the caption encoded alone against 0.667 on the
    # prefix; encoding the caption apart everywhere (``FeatureSettings.separate_knowledge``) raised the full model's
    # quality by 0.019 on the fourteenth round's set but lowered popularity by 0.017 (sixteenth round, README).
    # On since the seventeenth round, chosen on two development sets (``--seed 5`` and ``--seed 6``; 5 folds, training
    # seeds 0 and 1, against the defaults on the same features), disease macro-F1 / popularity Spearman / quality QWK:
    # on ``--seed 5`` 0.821 / 0.360 / 0.684 to 0.810 / 0.353 / 0.697, on ``--seed 6`` 0.802 / 0.276 / 0.683 to
    # 0.803 / 0.287 / 0.711; pooled over the two sets quality +0.021, disease −0.005, popularity +0.002, which passed
    # the rule written before the runs (quality up by 0.008 or more, neither other metric down by more than 0.010).
    quality_skip_caption_alone: bool = True
    # A direct path from entity linking to the disease logits: per label j, learned log-odds b_j + a_j·[the caption's
    # affirmed linked entities include j], starting at the training set's log-odds of j among videos that do not and
    # that do name it; the head on the fused embedding starts at zero and learns what it can add. The fused embedding
    # pools the linked entities and tokens into one vector and loses which label was named: on the development set
    # the head on it missed 74 of the 509 named true labels and predicted 108 labels no entity named, 99 of them
    # wrongly (macro-F1 0.644, where "predict what is named" alone gives 0.75). It reads the linked ids, not their GNN
    # embeddings, so the no-GNN ablation keeps it.
    disease_mentions: bool = True
    # With ``disease_mentions``: the prior also reads the labels the graph links to the caption's affirmed phenotypes
    # (a disease HAS_PHENOTYPE a symptom the caption describes; ``VideoFeatures.related_ids``, from the enrichment), as
    # c_j·[j related]·[j not named], starting at the training set's log-odds of j among videos that relate j and do not
    # name it. A caption that names no disease but says "看东西模糊，还怕光" points to the few diseases with both symptoms;
    # the fused head sees those names in the enriched text, but pooled, like the named labels it lost before.
    disease_related: bool = True
    # A path from the keyframes to the disease logits that only the disease loss trains (its own projection of the raw
    # keyframe features, pooled, a linear map to the labels starting at zero; the head refit trains it with the disease
    # head): 'attention' pools the projected frames with an attention pool, 'mil' scores every frame for every label
    # and takes a smooth maximum over the frames (multiple-instance learning: a disease shows in some frames, the
    # presenter and the slides in the rest). 'none': the frames reach the disease head only through the shared
    # projection, attention and concatenation, which the quality and popularity losses train too. Why: on the
    # replicate of the tenth round's declared set (eleventh round) the joint model's disease macro-F1 on the videos
    # whose caption names none of their labels was 0.173, level with the no-visual ablation (0.172), where single-task
    # heads reached 0.263 — the jointly trained trunk did not carry the frames' disease cues. 'mil' since the twelfth
    # round: on the development set (5 cross-fitted folds, training seed 0) it moved the full model's macro-F1 on the
    # 154 videos whose caption names none of their labels from 0.237 to 0.275 (single-task heads: 0.298 without the
    # path, 0.266 with it) and the full model from 0.774 / 0.345 / 0.677 to 0.781 / 0.343 / 0.678; 'attention' gave
    # 0.221 there and 0.776 / 0.336 / 0.695. Training seed 1 afterwards: 0.763 / 0.299 / 0.661 -> 0.769 / 0.301 / 0.657,
    # the subset 0.198 -> 0.213. On the declared set (twelfth round) it did less: that subset 0.147 -> 0.161,
    # the full model 0.756 / 0.285 / 0.661 -> 0.758 / 0.290 / 0.663 (README, table of record).
    disease_visual: str = "mil"
    # The disease decision rule beside the 0.5 threshold: when no label reaches it, predict the most probable label
    # anyway. 'auto' turns it on when every disease-labelled training video has at least one label — such a model
    # never saw a video about none of its diseases, so an empty prediction is under-confidence, not an answer it
    # learned — and off as soon as one training video is labelled ``[]``; 'on' and 'off' force it. The model keeps
    # the outcome (``FusionModel.at_least_one``), its predictions carry it (``Prediction.at_least_one``), and every
    # metric, checkpoint choice, bootstrap and PREDICTS edge uses it (``fusion.metrics.disease_decisions``). Why: on
    # the development set's twelfth-round predictions, after the fact, it moved the full model's macro-F1 from 0.781
    # to 0.798 and single-task heads' from 0.764 to 0.780; the joint model had been the more conservative one on the
    # declared set (README). Every SYNTHETIC video has 1–2 labels by construction, so 'auto' turns it on there.
    # Trained with it (it also steers checkpoint choice), the development set's seed 0 gave the full model 0.790 and
    # single-task heads 0.794: it helped them more. On the thirteenth round's declared set, scored without it, the full
    # model's predictions lose 0.003 and single-task heads' 0.019.
    disease_at_least_one: str = "auto"
    # A path from the mean raw token feature and mean raw entity embedding to the disease logits that only the disease
    # loss trains (``fusion.model.ContextDiseasePath``), starting at zero, beside the jointly trained trunk. Why: the
    # full model ranked diseases below concatenation, no-visual and single-task heads (mAP 0.785 against 0.793, 0.794
    # and 0.802 on the declared set of the twelfth round; 0.793 against 0.803 for single-task heads on the development
    # set). On by default since the thirteenth round, together with ``quality_caption_readout``; see there.
    disease_context: bool = True
    # With per-task readouts, the quality readout's text pool covers the caption's own tokens only, not the knowledge
    # text appended after them (the same for every video about a disease); the attention blocks still read it all.
    # Why: no-enrichment led the full model on quality QWK on the development and the declared sets. Chosen with
    # ``disease_context`` on the development set (5 cross-fitted folds, the at-least-one rule on, training seeds 0 and
    # 1; full model disease macro-F1 / popularity Spearman / quality QWK, mean of the two seeds), by a rule written
    # before the second seed's results (highest sum, no metric down by more than 0.010):
    # neither 0.789 / 0.325 / 0.667; disease_context 0.795 / 0.327 / 0.675; this alone 0.789 / 0.324 / 0.673;
    # both 0.795 / 0.324 / 0.680 (sums 1.781, 1.797, 1.786, 1.799).
    quality_caption_readout: bool = True
    # With per-task readouts under cross-attention, the quality readout reads the caption encoded on its own
    # (``VideoFeatures.caption_tokens``, as ``quality_skip_caption_alone``'s ridge does), cross-attended with the frames
    # and the linked entities by the shared blocks in a pass of its own, instead of the caption's prefix of the joint
    # caption-and-knowledge text, whose states have attended to the knowledge; the concatenation base under that
    # readout reads the same. The disease and popularity readouts keep the joint text. Costs a second pass through the
    # cross-modal blocks. Why: no-enrichment, whose text is the caption alone everywhere, led the full model on quality
    # in each of the last three declared runs; after the skip read the caption alone it still led by 0.010.
    # Off: on two development sets (eighteenth round: ``--seed 6`` and ``--seed 7``, 5 folds, training seeds 0 and 1)
    # it moved the full model by −0.000 / −0.016 / −0.004 pooled (disease macro-F1 / popularity Spearman / quality
    # QWK; quality −0.009 on ``--seed 6``, +0.002 on ``--seed 7``), failing the rule written before the runs (quality
    # +0.005 or more).
    quality_readout_caption_alone: bool = False
    # A task cascade into popularity: a ridge regression of standardised engagement on the metadata and the disease
    # labels (multi-hot), solved in closed form on the training videos (penalty ``popularity_cascade_ridge``) and then
    # fixed, read at prediction time with the disease head's probabilities (gradient stopped, so the popularity loss
    # never bends the disease head), times a learned scale and shift; the head on the fused embedding starts at zero
    # and learns what it can add. Engagement's learnable part is the audience, the platform and the topic (which
    # disease a video is about, ``docs/demo-data.md``); the topic is what the disease head reads from the video, so the
    # cascade is where the joint model gets something a popularity-only model cannot (that one gets the metadata part
    # alone). Needs metadata or the disease task. On the development set a ridge on the metadata alone ranked
    # engagement at Spearman 0.29 out of fold, the fusion model's head 0.21.
    popularity_cascade: bool = True
    popularity_cascade_ridge: float = 10.0
    # 'mlp' (one hidden layer) or 'linear' on the fused embedding: a linear head has less room to fit engagement noise.
    popularity_head: str = "mlp"
    # AdamW weight decay of the popularity head on the fused embedding alone (None: ``weight_decay``), in joint
    # training and in the head refit, as ``disease_head_decay`` does for the disease head. With the cascade beside it
    # (a fixed ridge on the metadata and the disease probabilities) a strong decay keeps that head near its zero start
    # unless the fused embedding earns its share. Why: engagement is mostly hidden virality, and the head's fit of it
    # differs from seed to seed (the full model's popularity Spearman moved by ±0.018 between two training seeds on
    # the seventeenth round's declared set) by more than the variants differ. Off: 10 on two development sets
    # (eighteenth round, as ``quality_readout_caption_alone``) moved the full model by −0.001 / −0.009 / −0.007 pooled
    # and left its popularity predictions no more alike between the two seeds (Spearman of seed 0's with seed 1's,
    # 0.825 against 0.828), failing the rule written before the runs.
    popularity_head_decay: float | None = None
    # Fixed multipliers of the task losses, e.g. {"disease": 4.0}; a task not named gets 1 (under 'uncertainty' the
    # learned weighting then acts on the multiplied losses). Disease ×4: its BCE is a mean over ~20 labels, most of
    # them 0, so unweighted it is several times smaller than the other two losses and the shared trunk follows them.
    # Popularity ×0.25: engagement is mostly hidden virality, so its loss stays large however well the model reads the
    # video, and at full weight it pulled the shared trunk toward fitting that noise (chosen on a second synthetic set,
    # bench/fusion_demo.py's docstring).
    task_weights: dict[str, float] | None = dataclasses.field(default_factory=lambda: {"disease": 4.0, "popularity": 0.25})
    # Optimisation
    lr: float = 1e-3
    weight_decay: float = 0.01
    # AdamW weight decay of the disease head on the fused embedding alone (None: ``weight_decay``), in joint training
    # and in the head refit. A strong decay shrinks that head's share of the disease logits toward zero unless the
    # fused embedding earns it, leaving the paths only the disease loss trains (the mention prior, the keyframes' and
    # the caption's own paths) to carry what they can. With lr 2e-3, 10 takes 2 % off the head's weights each step.
    # On by default (10) since the fourteenth round: on the development set (5 cross-fitted folds, training seeds 0
    # and 1, the thirteenth round's defaults otherwise) it moved the full model's two-seed mean from
    # 0.795 / 0.324 / 0.680 to 0.804 / 0.329 / 0.674 (disease macro-F1 / popularity Spearman / quality QWK), meeting a
    # rule written before the runs (disease +0.005, no other metric down by more than 0.010). Every variant's disease
    # head gets it, the single-task ones included.
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
    # Polyak averaging of the weights: an exponential moving average of the trainable parameters, updated after every
    # optimiser step with a time constant of this many epochs (None: off). Validation scores, the checkpoint kept and
    # the head refit's per-task snapshots are then those of the averaged weights, not of the last step's; the refit
    # averages its own parameters afresh from the joint checkpoint. Meant for the full model's quality, whose QWK moved
    # between training seeds more than a caption-only model's did (0.644-0.677 against 0.672-0.684 over four seeds on
    # the seventeenth round's set): averaging over the last epochs' weights smooths out where the last steps happened
    # to land. Off: on the seventeenth round's set (``--seed 7``, 5 folds, training seeds 0-3, four-seed means) a time
    # constant of 3 epochs moved the full model from 0.802 / 0.279 / 0.661 to 0.802 / 0.276 / 0.657 (disease macro-F1
    # / popularity Spearman / quality QWK) and no-enrichment's quality from 0.677 to 0.669, so no-enrichment still led
    # by 0.013 and the rule written before the runs failed (nineteenth round; bench/fusion_demo.py's docstring).
    weight_ema_epochs: float | None = None
    grad_clip: float = 1.0
    # How the tasks' gradients on the shared trunk are combined in joint training: 'none' sums them (the weighted loss's
    # gradient); 'pcgrad' is gradient surgery (Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020):
    # each task's trunk gradient has its component along any other task's gradient it conflicts with (negative dot
    # product) projected away, in a random task order per step, before they are summed. Task-specific parameters get
    # their own task's gradient either way. Costs one backward pass per task instead of one in all.
    gradient_surgery: str = "none"
    # Per-task head refit (``fusion.training.refit_heads``), after joint training has chosen the shared trunk's epoch by
    # the summed validation score: the trunk is frozen and each task's own parameters (its head, and its readout when
    # ``task_readout``) train further on that task's loss alone, each task keeping the epoch of its own best
    # validation metric (the joint checkpoint included, so refitting never lowers a task's validation metric). At most
    # this many epochs; 0 switches the stage off. Joint selection picks one epoch for three tasks whose best epochs differ.
    head_refit_epochs: int = 20
    # Where each task's refit starts: 'continue' from the joint checkpoint's head and readout, or 'fresh' from newly
    # initialised ones (the joint head stays a candidate either way). A fresh start lets a task whose joint head has
    # already overfit — popularity, mostly noise — be stopped early, as its single-task model would be.
    head_refit_init: str = "continue"
    # Multi-task training, then per-task fine-tuning of the attention (as MT-DNN does with its shared encoder): joint
    # training runs with the one shared pair of cross-modal blocks; the head refit then gives each task its own copy of
    # that pair, starting from the joint checkpoint's weights, and trains it with the task's readout and head (the
    # projections and metadata MLP stay frozen and shared). Needs ``task_readout`` and excludes ``task_attention``;
    # ignored by 'concat'. Until a refit has run (no validation set) every task reads the shared blocks. Off: against the
    # defaults of the same session it raised quality QWK on the demo set's validation splits (0.642 -> 0.662) but
    # lowered all three metrics on the development set's test splits (quality 0.586 -> 0.574, popularity Spearman
    # 0.245 -> 0.181), and trains ~1.6x slower (bench/fusion_demo.py's docstring, sixth round).
    refit_attention: bool = False
    # Born-again multi-task training (BAM; Clark et al., "BAM! Born-Again Multi-Task Networks for Natural Language
    # Understanding", ACL 2019): first one single-task model per task is trained with this config (the teachers, what
    # the single-task ablation trains); the joint model then learns from λ·label + (1 − λ)·teacher prediction on each
    # training video, λ rising linearly from 0 at the first epoch to 1 at ``epochs`` (teacher annealing), so it starts
    # by imitating the teachers and ends on the labels; the head refit uses the labels. Soft targets: the disease
    # probabilities, the standardised popularity, the quality P(GQS > k) (ordinal) or level probabilities (softmax).
    # Costs the teachers' training on top of the joint model's (about 3x the time). Ignored with one task. Off: alone it
    # raised quality QWK on both selection sets (0.642 -> 0.671, 0.586 -> 0.622) but stayed behind single-task heads on
    # quality on one; with ``quality_skip`` it is at parity with single-task heads on both, and with the other
    # ablations trained the same way, not ahead (bench/fusion_demo.py's docstring, seventh round).
    distill: bool = False
    # The epoch at which teacher annealing reaches the labels alone (None: ``epochs``); later epochs use the labels.
    # 20 instead of 50 helped on one selection set and hurt on the other (seventh round).
    distill_anneal_epochs: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        for name, value, allowed in (
            ("fusion", self.fusion, FUSIONS),
            ("task_weighting", self.task_weighting, TASK_WEIGHTINGS),
            ("quality_head", self.quality_head, QUALITY_HEADS),
            ("popularity_head", self.popularity_head, POPULARITY_HEADS),
            ("disease_loss", self.disease_loss, DISEASE_REDUCTIONS),
            ("head_refit_init", self.head_refit_init, REFIT_INITS),
            ("gradient_surgery", self.gradient_surgery, GRADIENT_SURGERIES),
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
        if self.fusion == "cross_attention" and self.task_attention and not self.task_readout:
            raise ValueError("task_attention=True needs task_readout=True (each task's blocks feed its own readout)")
        if self.popularity_cascade and self.has("popularity") and not (self.use_metadata or self.has("disease")):
            raise ValueError("popularity_cascade=True needs use_metadata=True or the disease task: it would read nothing")
        if self.popularity_cascade_ridge <= 0:
            raise ValueError(f"popularity_cascade_ridge={self.popularity_cascade_ridge} must be positive")
        if self.weight_ema_epochs is not None and not self.weight_ema_epochs > 0:
            raise ValueError(f"weight_ema_epochs={self.weight_ema_epochs} must be positive (or None for no averaging)")
        if self.quality_skip_ridge <= 0:
            raise ValueError(f"quality_skip_ridge={self.quality_skip_ridge} must be positive")
        if self.fusion == "cross_attention" and self.refit_attention and (self.task_attention or not self.task_readout):
            raise ValueError("refit_attention=True needs task_readout=True and task_attention=False "
                             f"(got task_readout={self.task_readout}, task_attention={self.task_attention})")
        if self.fusion == "cross_attention" and self.width % self.heads:
            raise ValueError(f"width={self.width} is not divisible by heads={self.heads}")
        if self.use_metadata and self.d_meta <= 0:
            raise ValueError(f"use_metadata=True conflicts with d_meta={self.d_meta}: set use_metadata=False")
        if "disease" in self.tasks and self.n_diseases <= 0:
            raise ValueError(f"task 'disease' is enabled but n_diseases={self.n_diseases}: give a non-empty label map")
        for name in ("d_visual", "d_text", "d_graph", "width", "heads", "epochs", "batch_size", "patience", "score_window"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)} must be positive")
        if self.distill_anneal_epochs is not None and self.distill_anneal_epochs <= 0:
            raise ValueError(f"distill_anneal_epochs={self.distill_anneal_epochs} must be positive (None: epochs)")
        if self.head_refit_epochs < 0:
            raise ValueError(f"head_refit_epochs={self.head_refit_epochs} must be ≥ 0 (0: no refit stage)")
        if self.min_epochs < 0:
            raise ValueError(f"min_epochs={self.min_epochs} must be ≥ 0 (0: stop as soon as patience runs out)")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1)")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise ValueError(f"modality_dropout={self.modality_dropout} must be in [0, 1)")
        if self.lr <= 0:
            raise ValueError(f"lr={self.lr} must be positive")
        for name in ("disease_head_decay", "popularity_head_decay"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be ≥ 0 (None: weight_decay)")

    def has(self, task: str) -> bool:
        """Whether ``task`` is trained and predicted."""
        return task in self.tasks

    @property
    def has_quality_skip(self) -> bool:
        """Whether the model has the quality skip (``quality_skip`` on an ordinal quality head that is trained)."""
        return self.quality_skip and self.has("quality") and self.quality_head == "ordinal"

    @property
    def reads_caption_alone(self) -> bool:
        """Whether the model reads the caption encoded on its own (``VideoFeatures.caption_tokens``): its quality skip
        does, with ``quality_skip_caption_alone``, and so does its quality readout, with
        ``quality_readout_caption_alone``. Features for it are extracted with ``FeatureSettings.caption_states``."""
        return (self.has_quality_skip and self.quality_skip_caption_alone) or self.quality_readout_reads_caption_alone

    @property
    def quality_readout_reads_caption_alone(self) -> bool:
        """Whether the quality readout reads the caption encoded on its own (``quality_readout_caption_alone`` on a
        cross-attention model with per-task readouts that predicts quality)."""
        return (self.quality_readout_caption_alone and self.has("quality") and self.task_readout
                and self.fusion == "cross_attention")

    def single_task(self, task: str) -> "FusionConfig":
        """This config for ``task`` alone: what the single-task ablation trains and ``distill`` learns from. Its
        checkpoint is chosen on its own task's metric, whatever ``selection_tasks`` says."""
        return self.replace(tasks=(task,), selection_tasks=None, distill=False)

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
        """Inverse of ``to_dict``; unknown keys raise ValueError (a config from a newer version should not half-load)."""
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
