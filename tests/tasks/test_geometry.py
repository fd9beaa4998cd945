import pytest

from sphinx_tasks import COCO_KEYPOINT_NAMES, Box, Keypoints, Point, SquareFrame


def test_iou_hand_computed():
    a = Box(0, 0, 2, 2)
    b = Box(1, 1, 3, 3)
    assert a.iou(b) == pytest.approx(1 / 7)
    assert a.iou(a) == 1.0
    assert a.iou(Box(2, 0, 3, 1)) == 0.0
    assert Box(1, 1, 1, 1).iou(Box(1, 1, 1, 1)) == 0.0


def test_square_frame_wide_image():
    frame = SquareFrame(200, 100)  # side 200, image pasted 50 px down
    assert frame.side == 200 and frame.offset == (0, 50)
    box = frame.box_to_square(Box(20, 10, 120, 60))
    assert box.as_tuple() == pytest.approx((0.1, 0.3, 0.6, 0.55))
    assert frame.box_from_square(box).as_tuple() == pytest.approx((20, 10, 120, 60))
    assert frame.box_to_image(box).as_tuple() == pytest.approx((0.1, 0.1, 0.6, 0.6))


def test_square_frame_uses_integer_offset():
    frame = SquareFrame(3, 6)  # (6 - 3) // 2 = 1
    assert frame.offset == (1, 0)
    assert frame.point_to_square(Point(0, 0)) == Point(1 / 6, 0)


def test_keypoints_from_coco_drops_invisible():
    flat = [0.0] * 51
    flat[0:3] = [10, 20, 2]  # nose visible
    flat[3 * 16 : 3 * 16 + 3] = [5, 6, 1]  # right_ankle labelled but occluded
    keypoints = Keypoints.from_coco(flat)
    assert dict(keypoints.items()) == {"nose": Point(10, 20), "right_ankle": Point(5, 6)}
    assert len(COCO_KEYPOINT_NAMES) == 17
    with pytest.raises(ValueError, match="unknown keypoint"):
        Keypoints({"tail": Point(0, 0)})
