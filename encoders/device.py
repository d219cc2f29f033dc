"""Which torch device the encoders run on: one rule, shared by the visual, text and graph encoders."""
from __future__ import annotations

import logging

import torch

from ovp.errors import ConfigError

logger = logging.getLogger(__name__)


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device setting (``OVP_DEVICE``) into a ``torch.device``.

    Args:
        name: ``"auto"`` (CUDA when a GPU is visible, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns:
        The device to put models and tensors on.

    Raises:
        ConfigError: the name is not a device torch knows, or CUDA is asked for on a machine without it.
    """
    name = (name or "auto").strip().lower()
    if name == "auto":
        # is_available() is cheap and never raises on CPU-only machines, even with a CUDA build of torch.
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"OVP_DEVICE={name!r} is not a torch device", hint="use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"OVP_DEVICE={name!r} but CUDA is not available on this machine", hint="set OVP_DEVICE=auto or cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"OVP_DEVICE={name!r} but only {torch.cuda.device_count()} CUDA device(s) are visible",
                hint="check CUDA_VISIBLE_DEVICES or pick a lower index",
            )
    elif device.type != "cpu":
        raise ConfigError(f"OVP_DEVICE={name!r} is not supported", hint="use auto, cpu, cuda or cuda:N")
    return device
