"""benchmarks/photo_served_input.py's geometry: every input mode's boxes come back to where the object is
in the photo (letterbox padding removed, tile offsets added), cut tile boxes are dropped, and the merge
keeps one box per object per class."""

import numpy as np
import pytest
from PIL import Image

from benchmarks.photo_served_input import RUN_KINDS, merge_runs, model_input, native_shape, plan_run, to_photo

WIDTH, HEIGHT = 120, 80
# a white object on black, well inside the top-left 60 % tile and the left half
OBJECT = (20, 10, 50, 40)  # x0, y0, x1, y1 in photo px


def _photo() -> Image.Image:
    array = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    x0, y0, x1, y1 = OBJECT
    array[y0:y1, x0:x1] = 255
    return Image.fromarray(array)


def _bright_extent(chw: np.ndarray) -> tuple[float, float, float, float]:
    """The input-normalised box around the pixels brighter than the letterbox gray."""
    bright = chw[0] > 200
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    height, width = bright.shape
    return cols[0] / width, rows[0] / height, (cols[-1] + 1) / width, (rows[-1] + 1) / height


@pytest.mark.parametrize("kind", ["stretch", "letterbox", "native", "tile_top_left", "half_left"])
def test_a_box_around_the_object_in_the_input_maps_back_onto_the_object(kind):
    plan = plan_run(kind, width=WIDTH, height=HEIGHT, size=64)
    chw = model_input(_photo(), plan)
    assert chw.shape == (3, *plan.canvas)
    row = np.array([[*_bright_extent(chw), 0.9, 0]])
    mapped = to_photo(row, plan)[0, :4] * [WIDTH, HEIGHT, WIDTH, HEIGHT]
    np.testing.assert_allclose(mapped, OBJECT, atol=2.5)  # bilinear edges blur by about one input pixel


def test_letterbox_pads_with_gray_and_keeps_the_aspect():
    plan = plan_run("letterbox", width=WIDTH, height=HEIGHT, size=60)
    assert plan.content == (0, 10, 60, 40)
    chw = model_input(Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 0)), plan)
    assert (chw[:, :10] == 114).all() and (chw[:, 50:] == 114).all() and (chw[:, 10:50] == 0).all()


def test_native_shape_keeps_the_long_side_and_rounds_the_short_side_to_32():
    assert native_shape(width=448, height=298) == (288, 448)
    assert native_shape(width=298, height=448) == (448, 288)
    assert native_shape(width=400, height=300) == (352, 448)  # 336 rounds up
    assert native_shape(width=448, height=448) == (448, 448)


def test_boxes_cut_by_an_inner_tile_edge_are_dropped_only_when_asked():
    plan = plan_run("tile_top_left", width=WIDTH, height=HEIGHT)
    rows = np.array(
        [
            [0.0, 0.0, 0.3, 0.3, 0.9, 0],  # touches the photo's own edges: kept
            [0.8, 0.2, 1.0, 0.4, 0.8, 0],  # touches the tile's right edge, inside the photo: cut
            [0.2, 0.8, 0.4, 1.0, 0.7, 1],  # touches the tile's bottom edge: cut
            [0.0, 0.0, 0.0, 0.0, 0.0, 0],  # graph padding: always dropped
        ]
    )
    assert len(to_photo(rows, plan)) == 3
    kept = to_photo(rows, plan, drop_cut=True)
    assert len(kept) == 1
    np.testing.assert_allclose(kept[0, :4], [0.0, 0.0, 0.18, 0.18])


def test_merge_keeps_the_best_box_per_object_and_class():
    full = np.array([[0.10, 0.10, 0.20, 0.20, 0.6, 0], [0.50, 0.50, 0.60, 0.60, 0.5, 0]])
    tile = np.array([[0.11, 0.10, 0.21, 0.20, 0.8, 0], [0.10, 0.10, 0.20, 0.20, 0.7, 1]])
    merged = merge_runs([full, tile])
    assert sorted(map(tuple, merged[:, 4:].round(2))) == [(0.5, 0.0), (0.7, 1.0), (0.8, 0.0)]
    assert merge_runs([full]) is full


def test_every_run_kind_has_a_plan():
    for kind in RUN_KINDS:
        plan_run(kind, width=WIDTH, height=HEIGHT)
    with pytest.raises(ValueError, match="unknown run kind"):
        plan_run("zoom", width=WIDTH, height=HEIGHT)
