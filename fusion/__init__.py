"""Fusion: cross-modal attention model, task heads, losses, manifests, training and evaluation."""
