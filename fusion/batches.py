"""Padded batches of ``VideoFeatures`` for the fusion model: what training and prediction both feed it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from fusion.config import FusionConfig
from fusion.losses import LossTargets
from fusion.records import LabelMap, VideoFeatures


@dataclass
class FeatureBatch:
    """Padded tensors for B items; ``*_valid`` masks are True on real positions. Every padded length is at least 1."""

    video_ids: list[str]
    frames: torch.Tensor
    frame_valid: torch.Tensor
    tokens: torch.Tensor
    token_valid: torch.Tensor
    entities: torch.Tensor
    entity_valid: torch.Tensor
    metadata: torch.Tensor
    targets: LossTargets
    # B × n_diseases: 1 where the item's linked entities include that label disease (``FusionConfig.disease_mentions``).
    mentions: torch.Tensor | None = None
    # B × L: True on the caption's own tokens, up to and including the first [SEP] (the knowledge enrichment follows it).
    caption_valid: torch.Tensor | None = None
    # B × n_diseases: 1 where the graph links that label disease to one of the item's linked phenotypes (``related_ids``).
    related: torch.Tensor | None = None
    # B × C × D_t and B × C: the caption's token states encoded on their own (``VideoFeatures.caption_tokens``), for
    # ``FusionConfig.quality_skip_caption_alone``; None when the config does not read them.
    caption_tokens: torch.Tensor | None = None
    caption_token_valid: torch.Tensor | None = None

    def to(self, device: torch.device) -> "FeatureBatch":
        moved = {
            f.name: getattr(self, f.name).to(device, non_blocking=True)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), torch.Tensor)
        }
        targets = LossTargets(**{k: v if v is None else v.to(device, non_blocking=True)
                                 for k, v in vars(self.targets).items()})
        return dataclasses.replace(self, **moved, targets=targets)

    def inputs(self) -> tuple[torch.Tensor, ...]:
        return (self.frames, self.frame_valid, self.tokens, self.token_valid, self.entities, self.entity_valid, self.metadata,
                self.mentions, self.caption_valid, self.related, self.caption_tokens, self.caption_token_valid)


def _pad(arrays: list[np.ndarray], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Length ≥ 1 even when every item is empty: attention and pooling then see one masked position, not a 0-size dim.
    length = max([len(a) for a in arrays] + [1])
    out = np.zeros((len(arrays), length, width), dtype=np.float32)
    valid = np.zeros((len(arrays), length), dtype=bool)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
        valid[i, : len(a)] = True
    return torch.from_numpy(out), torch.from_numpy(valid)


def collate(
    items: Sequence[VideoFeatures], config: FusionConfig, label_map: LabelMap, pop_mean: float = 0.0, pop_std: float = 1.0
) -> FeatureBatch:
    """Pad ``items`` into one ``FeatureBatch``; popularity targets are standardised with ``pop_mean``/``pop_std``.

    Disease ids outside ``label_map`` are ignored here (``train`` reports them once).
    """
    frames, frame_valid = _pad([it.frames for it in items], config.d_visual)
    tokens, token_valid = _pad([it.tokens for it in items], config.d_text)
    entities, entity_valid = _pad([it.entities for it in items], config.d_graph)
    metadata = torch.from_numpy(np.stack([it.metadata for it in items]).astype(np.float32).reshape(len(items), -1))
    n = len(items)
    diseases = np.zeros((n, len(label_map)), dtype=np.float32)
    for i, it in enumerate(items):
        if it.diseases is not None:
            diseases[i] = label_map.encode(it.diseases)[0]
    targets = LossTargets(
        diseases=torch.from_numpy(diseases),
        disease_mask=torch.tensor([it.diseases is not None for it in items]),
        popularity=torch.tensor(
            [((it.popularity - pop_mean) / pop_std) if it.popularity is not None else 0.0 for it in items], dtype=torch.float32
        ),
        popularity_mask=torch.tensor([it.popularity is not None for it in items]),
        quality=torch.tensor([it.quality or 1 for it in items], dtype=torch.long),
        quality_mask=torch.tensor([it.quality is not None for it in items]),
    )
    mentions = np.stack([label_map.encode(it.entity_ids)[0] for it in items]) if len(label_map) else np.zeros((n, 0))
    related = np.stack([label_map.encode(it.related_ids)[0] for it in items]) if len(label_map) else np.zeros((n, 0))
    caption_tokens = caption_token_valid = None
    if config.reads_caption_alone:
        missing = [it.video_id for it in items if it.caption_tokens is None]
        if missing:
            raise ValueError(f"video {missing[0]!r} has no caption-alone token states, which this model's quality skip "
                             "reads (FusionConfig.quality_skip_caption_alone): extract with "
                             "FeatureSettings.caption_states=True")
        caption_tokens, caption_token_valid = _pad([it.caption_tokens for it in items], config.d_text)
    caption_valid = token_valid.clone()
    for i, it in enumerate(items):
        if "[SEP]" in it.token_text:
            caption_valid[i, it.token_text.index("[SEP]") + 1 :] = False
    return FeatureBatch(
        video_ids=[it.video_id for it in items],
        frames=frames,
        frame_valid=frame_valid,
        tokens=tokens,
        token_valid=token_valid,
        entities=entities,
        entity_valid=entity_valid,
        metadata=metadata,
        targets=targets,
        mentions=torch.from_numpy(mentions.astype(np.float32)),
        caption_valid=caption_valid,
        related=torch.from_numpy(related.astype(np.float32)),
        caption_tokens=caption_tokens,
        caption_token_valid=caption_token_valid,
    )
