"""Frame sampling against the REFERENCE §7 formulas, view geometry, decoding and bad files (no TensorFlow)."""

import math
import os

import numpy as np
import pytest

from devias_jax.data import decode, failures, synthetic
from tests.data_helpers import write_bad_files


@pytest.mark.parametrize("length", [65, 100, 300, 1000])
def test_train_indices_long_video(length):
    num, stride, span = 16, 4, 64
    ends = []
    for seed in range(200):
        rng = np.random.default_rng(seed)
        got = decode.train_indices(length, num, stride, rng)
        end = int(np.random.default_rng(seed).integers(span, length))  # the same draw, U{64..len-1}
        start = end - span
        # linspace(start, end, 16) truncated, clipped to [start, end - 1]
        expected = [min(math.floor(start + i * span / (num - 1)), end - 1) for i in range(num)]
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == np.int64 and got[0] == start and got[-1] == end - 1 and np.all(np.diff(got) >= 4)
        ends.append(end)
    assert min(ends) >= span and max(ends) <= length - 1
    if length - span <= 40:  # every end value is reachable
        assert set(ends) == set(range(span, length))


@pytest.mark.parametrize("length", [64, 30, 5, 2])
def test_train_indices_short_video(length):
    got = decode.train_indices(length, 16, 4, np.random.default_rng(0))
    count = length // 4  # linspace over the whole video with len // stride points, padded with len
    expected = [min(math.floor(k * length / (count - 1)) if count > 1 else 0, length - 1) for k in range(count)]
    expected = expected + [length - 1] * (16 - count)
    if count == 1:
        expected[0] = 0
    np.testing.assert_array_equal(got, expected)
    assert len(got) == 16 and got.max() <= length - 1


def test_train_indices_other_settings():
    got = decode.train_indices(200, 8, 2, np.random.default_rng(1))
    end = int(np.random.default_rng(1).integers(16, 200))
    np.testing.assert_array_equal(got, [min(math.floor(end - 16 + i * 16 / 7), end - 1) for i in range(8)])


def test_test_indices_long_and_short():
    views = decode.test_indices(300, 16, 4, 2)
    assert views.shape == (2, 16)
    np.testing.assert_array_equal(views[0], np.arange(0, 64, 4))  # first window of every-4th frames
    np.testing.assert_array_equal(views[1], np.arange(296 - 60, 300, 4))  # last window ends at frame 296
    np.testing.assert_array_equal(decode.test_indices(300, 16, 4, 1)[0], np.arange(116, 180, 4))  # centred
    three = decode.test_indices(300, 16, 4, 3)
    assert three[1, 0] == 4 * int(1 * (75 - 16) / 2)
    short = decode.test_indices(40, 16, 4, 2)  # 10 frames, padded with the last
    expected = list(range(0, 40, 4)) + [36] * 6
    np.testing.assert_array_equal(short, [expected, expected])


def test_view_geometry():
    assert decode.resized_shape(240, 320, 224) == (224, 298)  # long side truncated like VideoMAE
    assert decode.resized_shape(320, 240, 224) == (298, 224)
    assert decode.resized_shape(256, 256, 224) == (224, 224)
    assert decode.spatial_crops(224, 298, 224, 3) == [(0, 0), (0, 37), (0, 74)]
    assert decode.spatial_crops(298, 224, 224, 3) == [(0, 0), (37, 0), (74, 0)]
    assert decode.spatial_crops(224, 298, 224, 1) == [(0, 37)]
    assert decode.spatial_crops(224, 224, 224, 3) == [(0, 0)] * 3


def test_decode_generated_mp4(tmp_path):
    frames = np.zeros((20, 48, 64, 3), np.uint8)
    frames[..., 1] = (40 + np.arange(64) * 2)[None, None, :]  # smooth content survives H.264 + yuv420
    frames[..., 2] = (60 + np.arange(48) * 3)[None, :, None]
    frames[:, :, :, 0] = (20 + np.arange(20) * 10)[:, None, None]  # frame index in the red channel
    path = str(tmp_path / "clip.mp4")
    synthetic.write_mp4(path, frames)
    decoder = decode.VideoDecoder()
    seen = []
    got = decoder.read(path, lambda n: seen.append(n) or np.array([0, 5, 19]))
    assert seen == [20] and got.shape == (3, 48, 64, 3) and got.dtype == np.uint8
    np.testing.assert_allclose(got[:, :, :, 0].mean(axis=(1, 2)), [20, 70, 210], atol=4)
    assert np.abs(got.astype(int) - frames[[0, 5, 19]]).mean() < 3  # lossy but close
    small = decode.VideoDecoder(decode_short_side=24).read(path, lambda n: np.arange(4))
    assert small.shape == (4, 24, 32, 3)  # decoded at reduced resolution, aspect kept


def test_decoded_video_cache_gives_the_same_frames_and_stays_within_its_budget(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        frames = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)  # noise: every frame differs
        paths.append(str(tmp_path / f"clip{i}.mp4"))
        synthetic.write_mp4(paths[-1], frames)
    plain = decode.VideoDecoder()
    one_video = 12 * 32 * 32 * 3
    cached = decode.VideoDecoder(cache_bytes=2 * one_video)  # room for two of the three videos
    for _ in range(2):  # first pass decodes (and keeps what fits), the second reads the kept frames
        for path in paths:
            for indices in ([0, 3, 6, 9], [11, 2, 2], list(range(12))):
                np.testing.assert_array_equal(cached.read(path, lambda n: np.array(indices)),
                                              plain.read(path, lambda n: np.array(indices)))
    assert cached.cached_bytes == 2 * one_video and sorted(cached._cache) == paths[:2]
    with pytest.raises(decode.DecodeError, match="missing"):
        cached.read(str(tmp_path / "nope.mp4"), lambda n: [0])
    assert decode.VideoDecoder().cached_bytes == 0  # off by default


def test_decode_frame_folder(tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    os.makedirs(folder)
    for i in range(12):
        Image.fromarray(np.full((8, 10, 3), i * 20, np.uint8)).save(folder / f"img_{i:05d}.png")
    got = decode.VideoDecoder().read(str(folder), lambda n: np.array([0, n - 1]), is_frames=True, num_frames=10)
    assert got.shape == (2, 8, 10, 3) and got[1, 0, 0, 0] == 9 * 20  # the list's frame count wins
    with pytest.raises(decode.DecodeError, match="missing frame folder"):
        decode.VideoDecoder().read(str(tmp_path / "nope"), lambda n: [0], is_frames=True)


def test_every_kind_of_bad_file_raises_decode_error(tmp_path):
    paths = write_bad_files(str(tmp_path))
    decoder = decode.VideoDecoder(min_frames=2)
    reasons = {}
    for kind, path in paths.items():
        with pytest.raises(decode.DecodeError) as info:
            decoder.read(path, lambda n: decode.train_indices(n, 8, 4, np.random.default_rng(0)))
        reasons[kind] = str(info.value)
    assert "missing" in reasons["missing"] and "0 bytes" in reasons["zero"]
    assert "fewer than min_frames=2" in reasons["one_frame"]
    assert all(reason.startswith(paths[kind]) for kind, reason in reasons.items())
    good = decoder.read(os.path.join(str(tmp_path), "good.mp4"),
                        lambda n: decode.train_indices(n, 8, 4, np.random.default_rng(0)))
    assert good.shape == (8, 32, 32, 3)


def test_failure_tracker():
    tracker = failures.FailureTracker(max_fraction=0.25, min_files=8)
    for i in range(6):
        tracker.record(f"good{i}", None)
    tracker.record("bad0", "garbage")
    tracker.record("bad0", "garbage")  # the same file again: counted once
    tracker.check()
    assert tracker.summary() == {"files_tried": 7, "files_bad": 1, "failed_attempts": 2}
    tracker.record("bad1", "missing")
    tracker.check()  # 2 of 8 = 0.25, not more than allowed
    tracker.record("bad2", "empty")
    with pytest.raises(failures.DataError, match=r"3 of 9 files .*\n  bad0: garbage\n  bad1: missing\n  bad2: empty"):
        tracker.check()
    assert tracker.is_bad("bad1") and not tracker.is_bad("good0")
