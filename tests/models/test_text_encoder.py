"""TextEncoder: the shipped MiniLM model, deterministic and cached per string, and a policy
conditioned on it tells two instructions apart from the same observations."""

import pytest
import torch

from robopolicy.errors import RobopolicyError
from robopolicy.models.text_encoder import TextEncoder
from robopolicy.policies.flow_matching import FlowMatchingPolicy

A = "Grasp the mug by its handle."
A2 = "Pick up the mug at its handle."
B = "Touch the left side of the bottle."


def test_same_string_same_vector_different_instructions_differ():
    enc = TextEncoder("minilm")
    first = enc([A, B])
    again = TextEncoder("minilm")([B, A, A])  # a new cache, another batch composition
    assert first.shape == (2, 384) and first.dtype == torch.float32
    torch.testing.assert_close(again[1], first[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(again[0], first[1], atol=1e-5, rtol=0)
    assert torch.equal(enc([A])[0], first[0])  # cached: bit-identical
    cos = lambda u, v: float(u @ v)  # noqa: E731  (unit-norm vectors)
    para = enc([A2])[0]
    assert cos(first[0], para) > 0.8 > cos(first[0], first[1])


def test_unknown_encoder_is_a_one_line_error():
    with pytest.raises(RobopolicyError, match="unknown text_encoder 'bert'"):
        TextEncoder("bert")


def test_text_conditioned_policy_follows_the_instruction():
    """Same observations, two instructions, two action chunks: after a short fit the policy
    returns the chunk of the instruction it is given; without text it refuses."""
    torch.manual_seed(0)
    meta = {"obs": {"pos": {"shape": [3], "type": "low_dim"}}, "action": {"shape": [2]}}
    policy = FlowMatchingPolicy(meta, horizon=8, n_action_steps=4, text_encoder="minilm",
                                unet={"diffusion_step_embed_dim": 32, "down_dims": [16, 32]})
    up, down = torch.ones(8, 2), -torch.ones(8, 2)
    policy.fit_normalizer({"action": torch.cat([up, down]), "pos": torch.randn(32, 3)})
    obs = {"pos": torch.zeros(16, 2, 3)}
    text = [A, B] * 8
    action = torch.stack([up, down] * 8)
    opt = torch.optim.AdamW(policy.parameters(), lr=3e-3)
    for _ in range(200):
        loss = policy.compute_loss({"obs": obs, "action": action, "text": text})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    out = policy.predict_action({"pos": torch.zeros(2, 2, 3)}, [A, B],
                                generator=torch.Generator().manual_seed(0))
    assert out[0].mean() > 0.7 and out[1].mean() < -0.7, out.mean(dim=(1, 2))
    with pytest.raises(RobopolicyError, match="conditioned on text"):
        policy.predict_action({"pos": torch.zeros(2, 2, 3)})
