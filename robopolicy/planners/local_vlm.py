"""The `transformers` planner: a local vision-language model directory (Qwen2-VL, SmolVLM...),
asked with the same prompt and checked by the same parser as the `openai` planner.

    planner=transformers planner.model_path=/models/Qwen2-VL-2B-Instruct

Nothing is downloaded (the hub is forced offline and every load is local_files_only), no code
from the directory runs (trust_remote_code=False) and weights load from safetensors only. The
directory must hold config.json of an image-text-to-text model, its processor with a chat
template, and *.safetensors; anything else (a robopolicy policy directory, a text-only model)
fails in one line. The model runs on CUDA when present; one generation at a time (the spawned
planners of all envs share the model).
"""

from __future__ import annotations

import io
import os
import threading
import time
from pathlib import Path
from typing import Any

from robopolicy.errors import RobopolicyError
from robopolicy.planners import register_planner
from robopolicy.planners.base import Completion, ModelPlanner
from robopolicy.planners.prompt import Prompt, chat_messages
from robopolicy.planners.vocabulary import DEFAULT_SNAP_THRESHOLD


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_vlm_dir(path: Path) -> None:
    """Refuse, in one line, a directory that is not a local safetensors VLM checkpoint."""
    where = f"planner.model_path {path}"
    if not path.is_dir():
        raise RobopolicyError(f"{where}: no such directory")
    if not (path / "config.json").is_file():
        kind = (" (it is a robopolicy policy directory, not a vision-language model)"
                if (path / "meta.json").is_file() else "")
        raise RobopolicyError(f"{where}: not a transformers model directory: no config.json{kind}")
    if not any(path.glob("*.safetensors")):
        raise RobopolicyError(f"{where}: no *.safetensors weights (only safetensors are loaded)")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


@register_planner()
class TransformersPlanner(ModelPlanner):
    """Plans with a local VLM directory (see the module docstring)."""

    def __init__(self, model_path: str | Path, device: str = "auto", dtype: str = "auto",
                 max_new_tokens: int = 256, snap_threshold: float = DEFAULT_SNAP_THRESHOLD,
                 invalid_retries: int = 1, max_calls: int = 32, concurrency: int = 1,
                 log_path: str | Path | None = None) -> None:
        super().__init__(snap_threshold=snap_threshold, invalid_retries=invalid_retries,
                         max_calls=max_calls, concurrency=concurrency, log_path=log_path)
        self.model_path = Path(model_path)
        self.max_new_tokens = int(max_new_tokens)
        self.device = resolve_device(device)
        self.processor, self.model = self._load(dtype)
        self._generate_lock = threading.Lock()  # shared by spawned planners: one generate at a time

    def _load(self, dtype: str) -> tuple[Any, Any]:
        path = self.model_path
        check_vlm_dir(path)
        os.environ["HF_HUB_OFFLINE"] = "1"  # a local directory only: never reach the hub
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
        )

        where = f"planner.model_path {path}"
        local = {"local_files_only": True, "trust_remote_code": False}
        try:
            config = AutoConfig.from_pretrained(path, **local)
        except Exception as exc:
            raise RobopolicyError(f"{where}: unreadable config.json ({_one_line(exc)})") from None
        if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
            raise RobopolicyError(f"{where}: a '{config.model_type}' model is not a vision-language "
                                  "(image-text-to-text) model")
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        elif dtype in ("float32", "float16", "bfloat16"):
            torch_dtype = getattr(torch, dtype)
        else:
            raise RobopolicyError(f"planner.dtype must be auto, float32, float16 or bfloat16, got {dtype!r}")
        try:
            processor = AutoProcessor.from_pretrained(path, **local)
            model = AutoModelForImageTextToText.from_pretrained(
                path, config=config, use_safetensors=True, dtype=torch_dtype, **local)
        except Exception as exc:
            raise RobopolicyError(f"{where}: cannot load the model or its processor "
                                  f"({_one_line(exc)})") from None
        if not getattr(processor, "chat_template", None):
            raise RobopolicyError(f"{where}: the processor has no chat template")
        return processor, model.to(self.device).eval()

    def complete(self, prompt: Prompt) -> Completion:
        import torch
        from PIL import Image

        text = self.processor.apply_chat_template(chat_messages(prompt), tokenize=False,
                                                  add_generation_prompt=True)
        images = None
        if prompt.image_png is not None:
            images = [Image.open(io.BytesIO(prompt.image_png)).convert("RGB")]
        inputs = self.processor(text=[text], images=images, return_tensors="pt").to(self.device)
        start = time.perf_counter()
        with self._generate_lock, torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        latency = time.perf_counter() - start
        n_in = inputs["input_ids"].shape[1]
        answer = self.processor.batch_decode(out[:, n_in:], skip_special_tokens=True)[0]
        request = {"model_path": str(self.model_path), "system": prompt.system, "text": prompt.text,
                   "image_png_bytes": None if prompt.image_png is None else len(prompt.image_png)}
        return Completion(answer, request, None, latency)
