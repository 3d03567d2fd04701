"""LinearNormalizer: min-max to [-1, 1], constant dims, round trips, state dict with dotted keys."""

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from robopolicy.data.normalizer import LinearNormalizer
from robopolicy.errors import RobopolicyError


def sample_data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    action = rng.uniform([-2.0, 0.0, 10.0], [3.0, 0.5, 10.0], size=(200, 3))  # dim 2 constant
    return {"action": action, "rgb.agentview_pos": rng.normal(size=(200, 4)).astype(np.float32)}


def test_min_max_map_to_minus_one_and_one():
    data = sample_data()
    norm = LinearNormalizer().fit(data)
    x = norm.normalize("action", torch.as_tensor(data["action"], dtype=torch.float32))
    torch.testing.assert_close(x[:, :2].amin(0), torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(x[:, :2].amax(0), torch.tensor([1.0, 1.0]))


def test_constant_dim_is_centred_and_round_trips():
    norm = LinearNormalizer().fit(sample_data())
    x = torch.tensor([[0.0, 0.25, 10.0]])
    y = norm.normalize("action", x)
    assert torch.isfinite(y).all()
    assert y[0, 2].item() == pytest.approx(0.0)
    torch.testing.assert_close(norm.unnormalize("action", y), x)


def test_round_trip_on_batched_windows_and_dtype():
    data = sample_data()
    norm = LinearNormalizer().fit({k: torch.as_tensor(v) for k, v in data.items()})
    x = torch.randn(5, 2, 4)  # (B, To, dim): statistics broadcast over leading axes
    y = norm.normalize("rgb.agentview_pos", x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    torch.testing.assert_close(norm.unnormalize("rgb.agentview_pos", y), x)


def test_state_dict_with_dotted_keys_survives_safetensors(tmp_path):
    data = sample_data()
    norm = LinearNormalizer().fit(data)
    save_file(norm.state_dict(), str(tmp_path / "n.safetensors"))
    fresh = LinearNormalizer({"action": (3,), "rgb.agentview_pos": (4,)})
    fresh.load_state_dict(load_file(str(tmp_path / "n.safetensors")), strict=True)
    assert sorted(fresh.keys) == ["action", "rgb.agentview_pos"]
    x = torch.randn(7, 4)
    torch.testing.assert_close(
        fresh.normalize("rgb.agentview_pos", x), norm.normalize("rgb.agentview_pos", x)
    )


def test_errors_name_the_key():
    norm = LinearNormalizer({"action": (3,)})
    with pytest.raises(RobopolicyError, match="'action' was never fitted"):
        norm.normalize("action", torch.zeros(1, 3))
    with pytest.raises(RobopolicyError, match="no key 'proprio'"):
        norm.normalize("proprio", torch.zeros(1, 3))
    with pytest.raises(RobopolicyError, match="'action'.*shape"):
        norm.fit({"action": np.zeros((4, 2))})
    with pytest.raises(RobopolicyError, match="NaN"):
        norm.fit({"action": np.full((4, 3), np.nan)})


def test_narrow_dims_are_not_stretched_to_the_full_range():
    # A dim the demos held within +-0.001 (a level gripper): a 0.01 deviation at test time
    # must stay a modest input, not become +-10.
    rng = np.random.default_rng(1)
    data = {"proprio": np.stack([rng.uniform(0.3, 0.6, 500), rng.uniform(-1e-3, 1e-3, 500)], 1)}
    norm = LinearNormalizer(min_range=0.05).fit(data)
    y = norm.normalize("proprio", torch.tensor([[0.45, 0.011]]))
    assert abs(float(y[0, 1])) < 0.5
    torch.testing.assert_close(norm.unnormalize("proprio", y), torch.tensor([[0.45, 0.011]]))
    lo, hi = data["proprio"][:, 0].min(), data["proprio"][:, 0].max()
    wide = norm.normalize("proprio", torch.tensor([[lo, 0.0], [hi, 0.0]], dtype=torch.float32))
    torch.testing.assert_close(wide[:, 0], torch.tensor([-1.0, 1.0]))  # wide dims: plain min-max
