"""Which torch device a run uses: one small helper shared by training, evaluation and benchmarks."""

from __future__ import annotations


def resolve_device(name: str) -> str:
    """"auto" -> "cuda" when a GPU is visible, else "cpu"; any other name is returned as is."""
    if name == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return name
