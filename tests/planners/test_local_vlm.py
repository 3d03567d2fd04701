"""The transformers planner on a tiny Qwen2-VL built here from a config and an in-memory
tokenizer (random weights, nothing downloaded): the code path ends in a valid skill or a clean
planner_invalid, and directories of another kind fail in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from robopolicy.errors import RobopolicyError
from robopolicy.planners import make_planner
from robopolicy.planners.base import PlannerInvalid
from robopolicy.planners.grammar import SkillCall
from robopolicy.planners.vocabulary import ObjectInfo

SPECIAL = ["<unk>", "<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
           "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
WORDS = ["{", "}", '"skill"', ":", '"grasp"', '"part"', '"handle"', ",", "system", "user", "assistant"]
TEMPLATE = ("{% for m in messages %}<|im_start|> {{ m['role'] }} {% for c in m['content'] %}"
            "{% if c['type'] == 'image' %}<|vision_start|> <|image_pad|> <|vision_end|> "
            "{% else %}{{ c['text'] }} {% endif %}{% endfor %}<|im_end|> {% endfor %}"
            "{% if add_generation_prompt %}<|im_start|> assistant {% endif %}")
OBS = {"rgb.agentview": np.random.default_rng(0).integers(0, 255, (56, 56, 3), dtype=np.uint8)}
MUG = ObjectInfo("mug", ("handle", "body", "contents"))


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory):
    """A ~78k-parameter Qwen2-VL with its processor, saved as a local model directory."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(SPECIAL)  # so the processor's runs of <|image_pad|> split apart
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                        eos_token="<|im_end|>")
    ids = {"bos_token_id": vocab["<|endoftext|>"], "eos_token_id": vocab["<|im_end|>"],
           "pad_token_id": vocab["<pad>"]}
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=4096,
                         rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}, **ids),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"], **ids)
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=56 * 56),
        tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(), chat_template=TEMPLATE)
    path = tmp_path_factory.mktemp("tiny_vlm")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path, vocab


def test_random_weights_end_cleanly(tiny_vlm, tmp_path):
    path, _ = tiny_vlm
    log = tmp_path / "planner_log.jsonl"
    planner = make_planner({"name": "transformers", "model_path": str(path), "device": "cpu",
                            "max_new_tokens": 12}, log_path=log)
    try:
        calls = planner.plan("Grasp the mug by its handle.", OBS, MUG)
    except PlannerInvalid as exc:  # the likely outcome of random weights
        assert exc.reason == "planner_invalid" and "\n" not in str(exc)
        assert planner.calls == 2
    else:
        assert calls and all(isinstance(c, SkillCall) for c in calls)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and records[0]["request"]["image_png_bytes"] > 0


def test_a_model_that_answers_json_yields_the_skill(tiny_vlm, tmp_path):
    """The same random model with generation biased to emit one grammar answer: the answer goes
    through decoding, the parser and validation into a SkillCall."""
    import shutil

    from transformers import GenerationConfig

    src, vocab = tiny_vlm
    path = tmp_path / "biased"
    shutil.copytree(src, path)
    seq = ["{", '"skill"', ":", '"grasp"', ",", '"part"', ":", '"handle"', "}", "<|im_end|>"]
    bias = [[[vocab["{"]], 50.0]]
    for i in range(1, len(seq)):  # each token after its predecessor (after ":" the two before)
        prev = seq[max(0, i - 2):i] if seq[i - 1] == ":" else seq[i - 1:i]
        bias.append([[vocab[w] for w in prev + [seq[i]]], 200.0])
    gen = GenerationConfig.from_pretrained(path)
    gen.sequence_bias = bias
    gen.save_pretrained(path)
    planner = make_planner({"name": "transformers", "model_path": str(path), "device": "cpu",
                            "max_new_tokens": 16})
    assert planner.plan("Grasp the mug by its handle.", OBS, MUG) == [SkillCall("grasp", {"part": "handle"})]
    assert planner.calls == 1


def test_other_directories_fail_in_one_line(tmp_path, tiny_vlm):
    policy_dir = tmp_path / "policy"
    policy_dir.mkdir()
    for name in ("config.yaml", "meta.json", "model.safetensors"):
        (policy_dir / name).write_text("{}")
    cases = {
        tmp_path / "nope": "no such directory",
        policy_dir: "no config.json (it is a robopolicy policy directory",
    }
    text_only = tmp_path / "text_only"
    text_only.mkdir()
    (text_only / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (text_only / "model.safetensors").write_bytes(b"")
    cases[text_only] = "a 'bert' model is not a vision-language"
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((tiny_vlm[0] / "config.json").read_text())
    cases[no_weights] = "no *.safetensors weights"
    for path, error in cases.items():
        with pytest.raises(RobopolicyError) as info:
            make_planner({"name": "transformers", "model_path": str(path)})
        assert error in str(info.value) and str(path) in str(info.value), str(info.value)
        assert "\n" not in str(info.value)
