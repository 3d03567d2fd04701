"""Episode data: the zarr episode store and training-window sampling (numpy + zarr only, no torch)."""

from robopolicy.data.sampler import SequenceSampler, split_episodes
from robopolicy.data.store import EpisodeStore, EpisodeWriter

__all__ = ["EpisodeStore", "EpisodeWriter", "SequenceSampler", "split_episodes"]
