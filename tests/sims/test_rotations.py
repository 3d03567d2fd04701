import numpy as np

from sims.core.rotations import mat_to_quat, mat_to_rot6d, quat_to_mat, rot6d_to_mat


def test_quat_mat_rot6d_round_trip():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(20, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, :1])
    m = quat_to_mat(q)
    np.testing.assert_allclose(m @ np.swapaxes(m, 1, 2), np.broadcast_to(np.eye(3), m.shape), atol=1e-9)
    np.testing.assert_allclose(mat_to_quat(m), q, atol=1e-9)
    np.testing.assert_allclose(rot6d_to_mat(mat_to_rot6d(m)), m, atol=1e-9)


def test_rot6d_orthonormalizes_noisy_input():
    m = quat_to_mat(np.array([0.9, 0.1, -0.3, 0.2]))
    noisy = mat_to_rot6d(m) + np.array([0.05, -0.02, 0.01, 0.03, 0.0, -0.04])
    r = rot6d_to_mat(noisy)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) > 0.999
    assert np.degrees(np.arccos((np.trace(r.T @ m) - 1) / 2)) < 5
