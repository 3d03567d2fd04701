"""ObsEncoder: every observation type's output size, the rgb backbones (small CNN, ResNet-18 with
GroupNorm), the part mask as a 4th channel, train/eval crops, the PointNet, clear config errors,
and a diffusion policy on rgb + mask + point cloud."""

import pytest
import torch
from torch import nn

from robopolicy.errors import RobopolicyError
from robopolicy.models.image import crop_images, stack_mask
from robopolicy.models.obs_encoder import ObsEncoder
from robopolicy.models.pointnet import PointNetEncoder
from robopolicy.policies.diffusion import DiffusionPolicy

H = W = 40  # the smallest size ResNet-18 keeps a 2x2 last feature map for after a 0.9 crop
SMALL = {"rgb_feature_dim": 16, "rgb_channels": [8, 16], "num_keypoints": 8, "pcd_feature_dim": 24}


def meta(*kinds: str) -> dict:
    obs = {}
    if "low_dim" in kinds:
        obs["proprio"] = {"shape": [5], "type": "low_dim"}
    if "rgb" in kinds:
        obs["rgb.agentview"] = {"shape": [H, W, 3], "type": "rgb"}
    if "mask" in kinds:
        obs["part_mask.agentview"] = {"shape": [H, W], "type": "mask"}
    if "pcd" in kinds:
        obs["pcd"] = {"shape": [64, 4], "type": "pcd"}
    return {"obs": obs, "action": {"shape": [4]}}


def random_obs(shape_meta: dict, n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, attrs in shape_meta["obs"].items():
        shape = (n, *attrs["shape"])
        if attrs["type"] == "rgb":
            out[key] = torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
        elif attrs["type"] == "mask":
            out[key] = torch.rand(shape, generator=g) > 0.7
        else:
            out[key] = torch.rand(shape, generator=g)
    return out


@pytest.mark.parametrize(
    ("kinds", "backbone", "expected_dim"),
    [
        (("low_dim",), "small_cnn", 5),
        (("rgb",), "small_cnn", 16),
        (("rgb",), "resnet18", 16),
        (("rgb", "mask"), "resnet18", 16),
        (("rgb", "mask"), "small_cnn", 16),
        (("pcd",), "small_cnn", 24),
        (("low_dim", "rgb", "mask", "pcd"), "resnet18", 5 + 16 + 24),
    ],
)
def test_output_dim_matches_forward(kinds, backbone, expected_dim):
    torch.manual_seed(0)
    shape_meta = meta(*kinds)
    encoder = ObsEncoder(shape_meta, rgb_backbone=backbone, crop_ratio=0.9, **SMALL)
    assert encoder.output_dim == expected_dim
    out = encoder(random_obs(shape_meta, 3))
    assert out.shape == (3, expected_dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_resnet18_uses_groupnorm_and_a_4_channel_first_conv_for_the_mask():
    torch.manual_seed(0)
    shape_meta = meta("rgb", "mask")
    encoder = ObsEncoder(shape_meta, rgb_backbone="resnet18", crop_ratio=0.9, **SMALL)
    resnet = encoder.rgb["rgb__agentview"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in resnet.modules())
    norms = [m for m in resnet.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 20 and all(m.num_groups == m.num_channels // 16 for m in norms)
    assert resnet.backbone[0].in_channels == 4
    # The mask is an input: changing it changes the features.
    encoder.eval()
    obs = random_obs(shape_meta, 2)
    a = encoder(obs)
    obs["part_mask.agentview"] = ~obs["part_mask.agentview"]
    assert not torch.allclose(a, encoder(obs))


def test_train_crop_is_random_and_eval_crop_is_the_centre():
    torch.manual_seed(0)
    shape_meta = meta("rgb", "mask")
    encoder = ObsEncoder(shape_meta, rgb_backbone="resnet18", crop_ratio=0.9, **SMALL)
    obs = random_obs(shape_meta, 4)
    encoder.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder(obs), encoder(obs), rtol=0, atol=0)
        encoder.train()
        assert not torch.allclose(encoder(obs), encoder(obs))


def test_crop_moves_the_mask_with_the_image():
    rows = torch.arange(H).view(1, H, 1).expand(8, H, W)
    cols = torch.arange(W).view(1, 1, W).expand(8, H, W)
    image = torch.stack([rows, cols, torch.zeros_like(rows)], -1).to(torch.uint8)
    mask = (rows + 2 * cols) % 3 == 0
    torch.manual_seed(0)
    crops = crop_images(stack_mask(image, mask), (24, 24), random=True)
    assert crops.shape == (8, 24, 24, 4)
    r, c = crops[..., 0].long(), crops[..., 1].long()
    assert len({int(r[i, 0, 0]) for i in range(8)}) > 1  # a different window per sample
    torch.testing.assert_close(crops[..., 3], ((r + 2 * c) % 3 == 0).to(torch.uint8) * 255)
    centre = crop_images(image, (24, 24), random=False)
    assert int(centre[0, 0, 0, 0]) == (H - 24) // 2 and int(centre[0, 0, 0, 1]) == (W - 24) // 2


def test_pointnet_ignores_point_order():
    torch.manual_seed(0)
    net = PointNetEncoder(in_channels=4, feature_dim=8)
    points = torch.rand(2, 50, 4)
    shuffled = points[:, torch.randperm(50)]
    torch.testing.assert_close(net(points), net(shuffled))


@pytest.mark.parametrize(
    ("obs", "kwargs", "match"),
    [
        ({"d": {"shape": [4, 4], "type": "voxels"}}, {}, "'d' has type 'voxels'.*supported"),
        (
            {"part_mask.wrist": {"shape": [H, W], "type": "mask"}},
            {},
            "no rgb key of the same camera",
        ),
        ({"pcd": {"shape": [64], "type": "pcd"}}, {}, "'pcd' \\(pcd\\) has shape"),
        (
            {"rgb.a": {"shape": [H, W, 3], "type": "rgb"}},
            {"rgb_backbone": "vit"},
            "rgb_backbone 'vit'",
        ),
        ({"rgb.a": {"shape": [H, W, 3], "type": "rgb"}}, {"crop_ratio": 1.5}, "crop_ratio 1.5"),
        (
            {"rgb.a": {"shape": [32, 32, 3], "type": "rgb"}},
            {"rgb_backbone": "resnet18"},
            "too small: its last feature map would be 1x1",
        ),
    ],
)
def test_config_mistakes_raise_one_line_errors(obs, kwargs, match):
    with pytest.raises(RobopolicyError, match=match) as info:
        ObsEncoder({"obs": obs}, **kwargs)
    assert "\n" not in str(info.value)


def test_diffusion_policy_on_rgb_mask_and_point_cloud():
    torch.manual_seed(0)
    shape_meta = meta("low_dim", "rgb", "mask", "pcd")
    policy = DiffusionPolicy(
        shape_meta,
        noise_scheduler={"num_train_timesteps": 20},
        horizon=8,
        n_obs_steps=2,
        n_action_steps=4,
        num_inference_steps=2,
        unet={"diffusion_step_embed_dim": 16, "down_dims": [16, 32], "n_groups": 4},
        obs_encoder={"rgb_backbone": "resnet18", "crop_ratio": 0.9, **SMALL},
    )
    assert policy.low_dim_keys == ["proprio"]  # images, masks and points are not normalized
    b = 2
    obs = {k: v.reshape(b, 2, *v.shape[1:]) for k, v in random_obs(shape_meta, b * 2).items()}
    policy.fit_normalizer({"action": torch.randn(20, 4), "proprio": torch.randn(20, 5)})
    loss = policy.compute_loss({"obs": obs, "action": torch.randn(b, 8, 4)})["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    assert policy.obs_encoder.pcd["pcd"].mlp[0].weight.grad.abs().sum() > 0
    policy.eval()
    g = torch.Generator().manual_seed(0)
    actions = policy.predict_action(obs, generator=g)
    assert actions.shape == (b, 4, 4) and torch.isfinite(actions).all()
