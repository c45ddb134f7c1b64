"""Connected components (irstd.core.components) on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from irstd.core.components import Components, connected_components


def test_components_labels_centroids_areas() -> None:
    # 8x8: A = 2x2 block at rows 1..2, cols 1..2; B = diagonal pair (5, 5), (6, 6); C = (1, 6)
    mask = np.zeros((8, 8), dtype=np.uint8)
    mask[1:3, 1:3] = 255
    mask[5, 5] = mask[6, 6] = 1
    mask[1, 6] = 7
    cc8 = connected_components(mask, 8)
    assert isinstance(cc8, Components) and cc8.n == 3 and cc8.n_pixels_on == 7
    # raster order of first pixels: A (1, 1), C (1, 6), B (5, 5)
    assert cc8.labels[1, 1] == 1 and cc8.labels[1, 6] == 2 and cc8.labels[5, 5] == cc8.labels[6, 6] == 3
    np.testing.assert_array_equal(cc8.centroids, [[1.5, 1.5], [1.0, 6.0], [5.5, 5.5]])
    np.testing.assert_array_equal(cc8.areas, [4, 1, 2])
    cc4 = connected_components(mask, 4)  # the diagonal pair splits in two
    assert cc4.n == 4 and cc4.areas.tolist() == [4, 1, 1, 1] and cc4.n_pixels_on == 7
    assert connected_components(mask).n == 3  # 8 is the default


def test_empty_mask_and_bad_connectivity() -> None:
    cc = connected_components(np.zeros((5, 4), dtype=bool), 8)
    assert cc.n == 0 and cc.n_pixels_on == 0 and cc.centroids.shape == (0, 2) and cc.areas.shape == (0,)
    assert cc.labels.shape == (5, 4) and not cc.labels.any()
    with pytest.raises(ValueError, match="4 or 8"):
        connected_components(np.zeros((3, 3), dtype=bool), 6)


def test_metrics_reexport_is_the_same_function() -> None:
    import irstd.metrics

    assert irstd.metrics.connected_components is connected_components
    assert irstd.metrics.Components is Components
