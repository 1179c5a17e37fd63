"""HAT as released: the restricted split reader, labels, file naming, compositing against hand-computed
expectations (PROTOCOL §1-§2), and the HAT source's views."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from devias_jax.data import augment, decode, hat, sources
from devias_jax.data import miniature_release as release_helpers


def test_background_index_is_the_authors_float64_linspace():
    mapping = hat.background_index(22, 121)
    assert mapping.shape == (22,) and mapping.min() >= 1
    assert mapping[11] == 60  # exact rational floor(1 + 11 * 120 / 22) would be 61; float64 gives 60
    np.testing.assert_array_equal(hat.background_index(4, 9), [1, 3, 5, 7])  # 1 + i * 8 / 4
    np.testing.assert_array_equal(hat.background_index(3, 3), [1, 1, 2])  # 1, 1.67, 2.33


def test_centre_of_mass_uses_raw_values_and_an_empty_mask_is_the_centre():
    mask = np.zeros((4, 6), np.uint8)
    mask[1, 1], mask[3, 5] = 255, 85  # weights 3 : 1
    assert hat.centre_of_mass(mask) == pytest.approx(((3 * 1 + 3) / 4, (3 * 1 + 5) / 4))
    assert hat.centre_of_mass(np.zeros((5, 8), np.uint8)) == (2.5, 4.0)
    # shift = int(background centre - foreground centre), truncated toward zero
    background = np.zeros((10, 10), np.uint8)
    background[7, 8] = 200
    assert hat.paste_shift(mask, background) == (int(7 - 1.5), int(8 - 2.0))
    assert hat.paste_shift(background, mask) == (int(1.5 - 7), int(2.0 - 8))  # (-5, -6): truncation of -5.5


def test_paste_threshold_and_clipping():
    """Pasted where mask > 128 (128 itself is not); what the shift pushes off the canvas is dropped."""
    foreground = Image.fromarray(np.full((2, 3, 3), 200, np.uint8))
    mask = Image.fromarray(np.asarray([[129, 128, 255], [0, 255, 255]], np.uint8), "L")
    background = Image.fromarray(np.zeros((4, 4, 3), np.uint8))
    out = hat.composite_frame(foreground, mask, background, (3, 2))  # rows 3..4, cols 2..4 of a 4x4 canvas
    expected = np.zeros((4, 4), np.uint8)
    expected[3, 2] = 200  # mask 129; (3, 3) has mask 128: not pasted; the rest falls off the canvas
    np.testing.assert_array_equal(out[..., 0], expected)
    out = hat.composite_frame(foreground, mask, background, (-1, -1))  # the top-left part falls off
    expected = np.zeros((4, 4), np.uint8)
    expected[0, 0] = expected[0, 1] = 200  # foreground row 1, cols 1..2 (mask 255, 255)
    np.testing.assert_array_equal(out[..., 0], expected)


def _tiny_release(root, masks_for, fg_size=(8, 12), bg_size=(10, 10), length=12, background_frames=30):
    """UCF naming; foreground frame i is red = 10 i, background frame j green = 5 j."""
    layout = hat.Layout("ucf101", str(root))
    pair = hat.Pair("A/v_a", "B/v_b", background_frames)
    for i in range(length):
        for path, value in ((layout.foreground_frame(pair.foreground, i), (10 * i, 0, 0)),):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(np.full(fg_size + (3,), value, np.uint8)).save(path.replace(".jpg", ".png"))
            os.replace(path.replace(".jpg", ".png"), path)  # lossless pixels under the released name
        path = layout.mask(pair.foreground, i)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(masks_for(i, fg_size)).save(path)
    for j in range(background_frames):
        path = layout.background_frame(pair.background, j)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.full(bg_size + (3,), (0, 5 * j, 0), np.uint8)).save(path.replace(".jpg", ".png"))
        os.replace(path.replace(".jpg", ".png"), path)
        mask = np.zeros(bg_size, np.uint8)
        mask[6:8, 6:8] = 255  # the background's own actor sits around (6.5, 6.5)
        path = layout.mask(pair.background, j)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(mask).save(path)
    return layout, pair


def test_composite_window_maps_frames_and_shifts_once(tmp_path):
    """Foreground 8x12 (short side 8), background 10x10 resized to 8x8; the foreground actor (a 2x2
    square) moves right by one pixel per frame, but the shift comes from the window's first frame."""
    def masks_for(i, size):
        mask = np.zeros(size, np.uint8)
        mask[2:4, 1 + i % 6:3 + i % 6] = 255
        return mask

    layout, pair = _tiny_release(tmp_path, masks_for)
    indices = np.asarray([2, 5, 9])
    out = hat.composite_window(layout, pair, indices, foreground_frames=12)
    assert out.shape == (3, 8, 8, 3)  # the canvas is the background resized to short side 8
    mapping = hat.background_index(12, 30)
    # background mask (10x10 -> 8x8 bilinear) centre; foreground centre of frame 2: (2.5, 3.5)
    resized = np.asarray(Image.fromarray(np.pad(np.full((2, 2), 255, np.uint8), ((6, 2), (6, 2)))).resize(
        (8, 8), Image.BILINEAR))
    by, bx = hat.centre_of_mass(resized)
    dy, dx = int(by - 2.5), int(bx - 3.5)
    for t, i in enumerate(indices):
        green = out[t, ..., 1].astype(int)
        assert np.abs(green[out[t, ..., 0] == 0] - 5 * mapping[i]).max() <= 1  # background frame j = mapping[i]
        pasted = np.zeros((8, 8), bool)
        ys, xs = np.nonzero(masks_for(int(i), (8, 12)) > 128)
        for y, x in zip(ys + dy, xs + dx):
            if 0 <= y < 8 and 0 <= x < 8:
                pasted[y, x] = True
        np.testing.assert_array_equal(out[t, ..., 0] > 0, pasted & (10 * i > 0))
        if i:
            assert (out[t, ..., 0][pasted] == 10 * i).all()


def test_an_empty_foreground_mask_gives_the_background(tmp_path):
    layout, pair = _tiny_release(tmp_path, lambda i, size: np.zeros(size, np.uint8))
    out = hat.composite_window(layout, pair, np.asarray([0, 3]), foreground_frames=12)
    assert (out[..., 0] == 0).all()  # nothing pasted
    mapping = hat.background_index(12, 30)
    assert np.abs(out[1, ..., 1].astype(int) - 5 * mapping[3]).max() <= 1


def test_a_malicious_split_is_refused_and_nothing_in_it_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "actionswap_rand_1.pickle"
    path.write_bytes(pickle.dumps({"A/v": Payload()}, protocol=4))
    with pytest.raises(hat.ReleaseError, match=r"actionswap_rand_1\.pickle.*refused.*builtins\.open|"
                                               r"actionswap_rand_1\.pickle.*refused.*io\.open"):
        hat.load_split(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (pickle.dumps(["A/v", "B/w"]), "expected a dict"),
    (pickle.dumps({"A/v": ["B/w"]}), "expected \\[bgClass/bgVid"),
    (pickle.dumps({"A/v": ["B/w", "many", "1"]}), "not an integer"),
    (pickle.dumps({"Av": ["B/w", 3, 1]}), "not 'fgClass/fgVid'"),
    (pickle.dumps({}), "empty"),
    (pickle.dumps({"A/v": ["B/w", 3, 1]})[:-5], "not a readable pickle"),
])
def test_malformed_splits_name_the_file(tmp_path, content, message):
    path = tmp_path / "split_1.pickle"
    path.write_bytes(content)
    with pytest.raises(hat.ReleaseError, match=message) as error:
        hat.load_split(str(path))
    assert str(path) in str(error.value)


def test_released_formats_read_as_the_authors_loader(tmp_path):
    """UCF pickles hold strings (B too); Kinetics ints; labels.csv two folders above; naming per dataset."""
    info = release_helpers.write_release(str(tmp_path / "ucf"), "ucf101")
    split = tmp_path / "ucf" / "filelist" / "hat" / "ucf101" / "rand" / "actionswap_rand_1.pickle"
    pairs = hat.load_split(str(split))
    assert [p.foreground for p in pairs] == list(info["splits"][("rand", 1)])
    assert all(isinstance(p.background_frames, int) for p in pairs)
    labels = hat.load_labels(hat.labels_path_for(str(split)))
    assert labels == {name: i for i, name in enumerate(release_helpers.CLASSES)}
    layout = hat.Layout("ucf101", str(tmp_path / "ucf" / "hat" / "ucf101"))
    assert layout.foreground_frame("Rising/v_x", 0).endswith("rawframes/Rising/v_x/image_00001.jpg")
    assert layout.mask("Rising/v_x", 0).endswith("seg/Rising/v_x/img_00000.png")
    assert layout.background_frame("Rising/v_x", 3).endswith("inpaint/Rising/v_x/img_00003.jpg")
    kinetics = hat.Layout("kinetics", "/r")
    assert kinetics.foreground_frame("abseiling/abc_000000_000010", 0) == "/r/original/videos/abc_000000_000010/000001.jpg"
    assert kinetics.mask("eating burger/x", 1) == "/r/seg/videos/x/000002.png"
    assert kinetics.background_frame("eating burger/x", 0) == "/r/inpaint/videos/x/000001.jpg"
    assert hat.infer_dataset("/data/hat/ucf101") == "ucf101" and hat.infer_dataset("hat/kinetics") == "kinetics"
    with pytest.raises(hat.ReleaseError, match="cannot tell"):
        hat.infer_dataset("/data/hat")


def test_hat_source_views_default_and_official(tmp_path):
    release_helpers.write_release(str(tmp_path), "ucf101")
    split = str(tmp_path / "filelist" / "hat" / "ucf101" / "rand" / "actionswap_rand_1.pickle")
    labels = hat.load_labels(hat.labels_path_for(split))
    kwargs = dict(root=str(tmp_path / "hat" / "ucf101"), dataset="ucf101", labels=labels, num_frames=4,
                  frame_stride=4, temporal_views=2, spatial_views=3, num_actions=3)
    source = sources.HatSource(split, **kwargs)
    assert len(source) == 6 and source.labels(0) == (0, -1)
    length = release_helpers.SPEC.frames
    np.testing.assert_array_equal(source.windows(0, length), decode.test_indices(length, 4, 4, 2))
    frames, action, scene = source.read_eval(0)
    assert frames.shape == (2, 4, 48, 64, 3) and (action, scene) == (0, -1)
    # official: one window per (segment, crop) view, as the authors' loader draws one per item
    official = sources.HatSource(split, **kwargs, official_windows=True, seed=5)
    windows = official.windows(0, length)
    assert official.crop_per_window and official.eval_windows == 6 and source.eval_windows == 2
    assert windows.shape == (6, 4) and len({tuple(w) for w in windows}) > 2
    np.testing.assert_array_equal(windows, official.windows(0, length))  # seeded: the same every time
    official_frames = official.read_eval(0)[0]
    assert official_frames.shape == (6, 4, 48, 64, 3)
    for view, window in enumerate(windows):  # view k is the composite of its own window
        np.testing.assert_array_equal(official_frames[view],
                                      hat.composite_window(official.layout, official.pairs[0], window, length))
    with pytest.raises(hat.ReleaseError, match="cannot be trained on"):
        source.read_train(0, np.random.default_rng(0))
    with pytest.raises(hat.ReleaseError, match="num_actions=2"):
        sources.HatSource(split, **{**kwargs, "num_actions": 2})
    # a folder of splits, ordered by their number
    splits = hat.split_files(os.path.dirname(split))
    assert [label for label, _ in splits] == ["split1", "split2", "split3"]


def test_test_views_cut_each_window_at_its_own_crop_when_asked():
    frames = np.random.default_rng(0).integers(0, 256, (6, 2, 8, 12, 3), dtype=np.uint8)  # 2 x 3 views
    crops = np.asarray([[0, 0], [0, 2], [0, 4]], np.int32)
    paired = np.asarray(augment.test_views(frames, np.asarray([8, 12], np.int32), crops, 8, crop_per_window=True))
    assert paired.shape == (6, 2, 8, 8, 3)
    for view in range(6):
        left = crops[view % 3, 1]
        np.testing.assert_array_equal(paired[view], frames[view, :, :, left:left + 8])
    every = np.asarray(augment.test_views(frames[:2], np.asarray([8, 12], np.int32), crops, 8))
    assert every.shape == (6, 2, 8, 8, 3)  # 2 windows x 3 crops, temporal-major
    np.testing.assert_array_equal(every[4], frames[1, :, :, 2:10])
