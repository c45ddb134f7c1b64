"""A constant-velocity Kalman filter for many point tracks at once (batched numpy).

State per track ``[x, y, vx, vy]`` (px, px/frame) in scene coordinates; measurement ``[x, y]``.
Arrays: states (T, 4), covariances (T, 4, 4).
"""

from __future__ import annotations

import numpy as np

F = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64)
H = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float64)


def process_noise(accel_std: float) -> np.ndarray:
    """Q of a white-acceleration model (std ``accel_std`` px/frame²), (4, 4)."""
    q = accel_std ** 2
    a = np.array([[0.25, 0.5], [0.5, 1.0]]) * q  # per axis, (position, velocity)
    out = np.zeros((4, 4))
    out[np.ix_([0, 2], [0, 2])] = a
    out[np.ix_([1, 3], [1, 3])] = a
    return out


def initial(pos: np.ndarray, meas_std: float, speed_std: float) -> tuple[np.ndarray, np.ndarray]:
    """States (N, 4) at rest at ``pos`` (N, 2) and their covariances (N, 4, 4)."""
    n = len(pos)
    x = np.zeros((n, 4))
    x[:, :2] = pos
    p = np.diag([meas_std ** 2, meas_std ** 2, speed_std ** 2, speed_std ** 2])
    return x, np.broadcast_to(p, (n, 4, 4)).copy()


def predict(x: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame ahead: (T, 4), (T, 4, 4)."""
    return x @ F.T, F @ p @ F.T + q


def innovation_std(p: np.ndarray, meas_std: float) -> np.ndarray:
    """Std (px) of the predicted position along its worse axis, (T,): sets each track's gate."""
    s = p[:, [0, 1], [0, 1]] + meas_std ** 2  # diagonal of H P Hᵀ + R, (T, 2)
    return np.sqrt(s.max(axis=1))


def update(x: np.ndarray, p: np.ndarray, z: np.ndarray, meas_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Correct states (M, 4) and covariances (M, 4, 4) with measurements ``z`` (M, 2)."""
    pht = p[:, :, :2]  # P Hᵀ, (M, 4, 2)
    s = pht[:, :2, :] + np.eye(2) * meas_std ** 2  # (M, 2, 2)
    k = pht @ np.linalg.inv(s)  # (M, 4, 2)
    x = x + (k @ (z - x[:, :2])[:, :, None])[:, :, 0]
    p = p - k @ pht.transpose(0, 2, 1)
    return x, p
