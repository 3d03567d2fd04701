"""The target-part overlay of `view --video mask=true`."""

import numpy as np

from robopolicy.viewer.overlay import TARGET_RGB, overlay_mask


def test_overlay_tints_only_the_masked_pixels_and_scales_the_mask():
    frame = np.full((4, 6, 3), 100, np.uint8)
    mask = np.zeros((2, 3), bool)
    mask[0, 0] = True  # the top-left 2x2 block once scaled to the frame
    out = overlay_mask(frame, mask, alpha=0.5)
    tinted = np.zeros((4, 6), bool)
    tinted[:2, :2] = True
    np.testing.assert_array_equal(out[~tinted], frame[~tinted])
    np.testing.assert_allclose(out[tinted], np.tile((np.array(TARGET_RGB) + 100) // 2, (4, 1)),
                               atol=1)
    assert frame.max() == 100  # the input is left as it was
