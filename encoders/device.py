"""Which torch device the encoders run on: one rule, shared by the visual, text and graph encoders."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

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


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Let torch use ``threads`` CPU threads inside the block (None: leave it), then restore the previous count.

    Why it matters: on a small, shared machine the many tiny kernels of message passing or a small model spend more
    time in OpenMP hand-offs than in work once other processes compete for the cores; and a worker's main process must
    run no parallel region before it forks its pool (GNU OpenMP's thread pool does not survive the fork).
    """
    if threads is None:
        yield
        return
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
