"""Encoders: visual (PyAV keyframes, torchvision ResNet), text (entity linking, enrichment, BERT), graph (PyG GNN)."""
