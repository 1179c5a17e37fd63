"""tf.data streams: batch contract, determinism, resume, per-process sharding, views, bad files, ownership."""

import dataclasses
import os

import numpy as np
import pytest

from devias_jax.data import decode, failures, sources, streams, synthetic, tf_setup
from tests.data_helpers import TINY, data_config, tiny_dataset, write_bad_files

# TINY's training list has 24 clips: a global batch of 8 is 3 steps per epoch.
GLOBAL_BATCH = 8


@pytest.fixture(scope="module")
def root():
    return tiny_dataset()


def _train(config, seed=0, start_step=0, process_index=0, process_count=1, global_batch=GLOBAL_BATCH):
    return streams.train_batches(config, global_batch_size=global_batch, process_index=process_index,
                                 process_count=process_count, seed=seed, start_step=start_step)


def _take(stream, steps):
    """`steps` batches of a fresh stream, which is closed afterwards."""
    with stream:
        return [next(stream) for _ in range(steps)]


def _eval(config, list_path, **kwargs):
    with streams.eval_batches(config, list_path, **kwargs) as stream:
        return list(stream)


def test_tensorflow_sees_no_gpu():
    tf = tf_setup.import_tf()
    assert tf.config.get_visible_devices("GPU") == []


def test_train_batches_contract_determinism_and_resume(root):
    config = data_config(root)
    ann = sources.get(config).annotations
    first = _take(_train(config, seed=5), 5)  # crosses the epoch boundary after step 3
    for batch in first:
        assert set(batch) == {"clips", "action", "scene", "index", "substituted"}
        assert batch["substituted"].dtype == bool and not batch["substituted"].any()
        assert batch["clips"].shape == (GLOBAL_BATCH, 8, 64, 64, 3) and batch["clips"].dtype == np.uint8
        for key in ("action", "scene", "index"):
            assert batch[key].shape == (GLOBAL_BATCH,) and batch[key].dtype == np.int32
        np.testing.assert_array_equal(batch["action"], ann.action[batch["index"]])
        np.testing.assert_array_equal(batch["scene"], ann.scene[batch["index"]])
    # One epoch visits every clip once; the next epoch is a different order.
    epoch0 = np.concatenate([b["index"] for b in first[:3]])
    assert sorted(epoch0.tolist()) == list(range(len(ann)))
    assert not np.array_equal(np.concatenate([b["index"] for b in first[3:5]]), epoch0[:16])
    # Same seed -> same batches; resuming at step 2 -> exactly steps 2, 3, 4 of the uninterrupted run.
    resumed = _take(_train(config, seed=5, start_step=2), 3)
    for expected, got in zip(first[2:], resumed):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
    other = _take(_train(config, seed=6), 1)[0]
    assert not np.array_equal(other["index"], first[0]["index"])
    # Keeping decoded videos in memory (data.decode_cache_mb) changes no batch, epochs after the first included.
    cached = data_config(root, decode_cache_mb=64)
    for expected, got in zip(first, _take(_train(cached, seed=5), 5)):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
    # only the training list keeps decoded videos: it is the one read once per epoch
    assert sources.get(cached).decoder.cache_bytes == 64 * 2**20
    assert sources.get(cached, "val_seen.txt").decoder.cache_bytes == 0


def test_augmentation_changes_pixels_but_not_labels(root):
    config = data_config(root, shuffle=False)
    plain = data_config(root, shuffle=False)
    plain.augment.update(crop_area=(1.0, 1.0), crop_aspect=(1.0, 1.0), flip=False, rand_augment_n=0)
    augmented, clean = _take(_train(config), 1)[0], _take(_train(plain), 1)[0]
    np.testing.assert_array_equal(augmented["index"], np.arange(GLOBAL_BATCH))
    np.testing.assert_array_equal(clean["index"], augmented["index"])
    assert not np.array_equal(augmented["clips"], clean["clips"])
    # Without augmentation the clip is the decoded frames (full crop, resize 64 -> 64 is exact).
    ann = sources.get(plain).annotations
    rng = np.random.default_rng([0, 0, 0, 1])  # (seed, position 0, attempt 0, 1): the temporal window draw
    frames = decode.VideoDecoder().read(ann.paths[0], lambda n: decode.train_indices(n, 8, 4, rng))
    np.testing.assert_array_equal(clean["clips"][0], frames)


@pytest.mark.parametrize("process_count", [1, 2, 4])
def test_train_sharding_disjoint_and_complete(root, process_count):
    config = data_config(root)
    steps_per_epoch = 24 // GLOBAL_BATCH
    seen = []
    for process in range(process_count):
        stream = _train(config, seed=1, process_index=process, process_count=process_count)
        # The pure position -> row map, checked over two epochs without decoding.
        rows = [stream.row(stream.position(c)) for c in range(2 * steps_per_epoch * stream.batch_size)]
        seen.append(np.asarray(rows).reshape(2, steps_per_epoch, -1))
        if process_count == 2:  # and the real batches agree with it
            batches = _take(stream, steps_per_epoch)
            np.testing.assert_array_equal(np.stack([b["index"] for b in batches]), seen[-1][0])
            assert batches[0]["clips"].shape[0] == GLOBAL_BATCH // 2
    per_epoch = np.concatenate(seen, axis=2)  # (epoch, step, global batch) in process order
    for epoch in range(2):
        assert sorted(per_epoch[epoch].reshape(-1).tolist()) == list(range(24))
    # The global batch of each step does not depend on how many processes read it.
    reference = _train(config, seed=1)
    global_rows = [reference.row(g) for g in range(2 * 24)]
    np.testing.assert_array_equal(per_epoch.reshape(-1), global_rows)


@pytest.mark.parametrize("process_count", [1, 2, 4])
def test_eval_sharding_padding_and_counts(root, process_count):
    config = data_config(root)
    size = len(sources.get(config, "val_seen.txt"))  # 12
    batch_size = 2
    valid_rows, lengths = [], set()
    for process in range(process_count):
        rows = streams.eval_rows(size, batch_size, process, process_count)
        lengths.add(len(rows))
        valid_rows += rows[rows >= 0].tolist()
    assert sorted(valid_rows) == list(range(size)) and len(lengths) == 1
    assert streams.eval_rows(5, 2, 3, 4).tolist() == [-1, -1]  # a process with nothing still runs a batch
    if process_count == 2:
        with streams.eval_batches(config, "val_seen.txt", batch_size=4, process_index=1, process_count=2) as stream:
            batches = list(stream)
            assert len(batches) == len(stream) == 2
        index = np.concatenate([b["index"] for b in batches])
        valid = np.concatenate([b["valid"] for b in batches])
        np.testing.assert_array_equal(index, [6, 7, 8, 9, 10, 11, -1, -1])
        np.testing.assert_array_equal(valid, index >= 0)
        batch = batches[1]
        assert batch["clips"].shape == (4, 6, 8, 64, 64, 3) and batch["clips"].dtype == np.uint8
        assert batch["valid"].dtype == bool and (batch["clips"][2:] == 0).all()
        assert batch["action"][3] == -1 and batch["scene"][3] == -1


def test_eval_view_geometry(tmp_path):
    # 48 frames of 64x96: red = frame index, green = column, blue = row (smooth, survives H.264).
    frames = np.zeros((48, 64, 96, 3), np.uint8)
    frames[..., 0] = (20 + 4 * np.arange(48))[:, None, None]
    frames[..., 1] = (20 + 2 * np.arange(96))[None, None, :]
    frames[..., 2] = (20 + 3 * np.arange(64))[None, :, None]
    synthetic.write_mp4(str(tmp_path / "v.mp4"), frames)
    with open(tmp_path / "list.txt", "w") as handle:
        handle.write("v.mp4 0\n")
    config = data_config(str(tmp_path), scene_source="none")
    config.model.num_actions = 1
    config.model.img_size = 32
    config.data.short_side = 48  # 64x96 -> 48x72, crops of 32 at (8, 0), (8, 20), (8, 40)
    batch = _eval(config, "list.txt", batch_size=1, process_index=0, process_count=1)[0]
    clips = batch["clips"][0].astype(float)  # (6, 8, 32, 32, 3)
    assert clips.shape == (6, 8, 32, 32, 3) and batch["valid"].tolist() == [True]
    temporal = decode.test_indices(48, 8, 4, 2)  # every 4th frame, first and last window
    for view in range(6):
        t, s = divmod(view, 3)
        np.testing.assert_allclose(clips[view, :, 16, 16, 0], 20 + 4 * temporal[t], atol=4)
        left = [0, 20, 40][s]
        # resized column x' samples source column (x' + 0.5) * 96 / 72 - 0.5
        source_col = (left + 16 + 0.5) * 96 / 72 - 0.5
        np.testing.assert_allclose(clips[view, :, 16, 16, 1], 20 + 2 * source_col, atol=4)
        source_row = (8 + 16 + 0.5) * 64 / 48 - 0.5  # crops are centred on the short side: top 8
        np.testing.assert_allclose(clips[view, :, 16, 16, 2], 20 + 3 * source_row, atol=4)


def _mixed_list(tmp_path, root):
    """11 good training clips then the 5 kinds of bad file; returns (config, {kind: path})."""
    bad = write_bad_files(str(tmp_path / "bad"))
    good = [line.split()[0] for line in open(os.path.join(root, "train.txt"))][:11]
    with open(tmp_path / "mixed.txt", "w") as handle:
        for path in good:
            handle.write(f"{os.path.join(root, path)} 0 0\n")
        for path in bad.values():
            handle.write(f"{path} 1 1\n")
    return data_config(str(tmp_path), train_list="mixed.txt", max_failure_fraction=0.5), bad


def test_bad_files_are_replaced_marked_counted_and_stop_the_run(tmp_path, root):
    config, bad = _mixed_list(tmp_path, root)
    with _train(config, global_batch=16) as stream:
        batch = next(stream)  # 16 = every row once: the 5 bad ones are replaced by good ones
        ann = stream.source.annotations
        assert batch["clips"].shape[0] == 16
        assert all(not ann.paths[i].startswith(str(tmp_path / "bad")) for i in batch["index"])
        assert set(stream.failures.bad) == set(bad.values())
        assert stream.failures.summary()["files_bad"] == 5
        # Exactly the positions whose permuted row was a bad file say so.
        rows = np.asarray([stream.row(stream.position(c)) for c in range(16)])
        np.testing.assert_array_equal(batch["substituted"], rows >= 11)
        assert batch["substituted"].sum() == 5
        assert "missing" in stream.failures.bad[bad["missing"]] and "0 bytes" in stream.failures.bad[bad["zero"]]
    # Evaluation marks them invalid instead.
    batches = _eval(config, "mixed.txt", batch_size=8, process_index=0, process_count=1)
    valid = np.concatenate([b["valid"] for b in batches])
    index = np.concatenate([b["index"] for b in batches])
    assert valid[:11].all() and not valid[11:].any() and index[:16].tolist() == list(range(16))
    # Past the allowed fraction the run stops and names the files.
    config.data.max_failure_fraction = 0.2
    with pytest.raises(failures.DataError) as info:
        _take(_train(config, global_batch=16), 2)
    message = str(info.value)
    assert "max_failure_fraction=0.2" in message and all(path in message for path in bad.values())
    with pytest.raises(failures.DataError):
        _eval(config, "mixed.txt", batch_size=8, process_index=0, process_count=1)


def test_bad_file_list_is_written_with_reasons(tmp_path):
    tracker = failures.FailureTracker(1.0)
    tracker.record("/v/a.mp4", "missing")
    tracker.record("/v/b.mp4", None)
    tracker.record("/v/c.mp4", "truncated: moov atom not found")
    path = str(tmp_path / "out" / "bad_videos.txt")
    failures.write_bad_files(path, tracker.bad_files(), "2 file(s) could not be decoded")
    lines = open(path).read().splitlines()
    assert lines == ["# 2 file(s) could not be decoded", "/v/a.mp4\tmissing", "/v/c.mp4\ttruncated: moov atom not found"]


def test_stream_names_the_file_it_is_stuck_on(root, monkeypatch):
    """A read that does not come back is registered while it runs, so a watchdog can name the file."""
    config = data_config(root, decode_workers=1)
    source = sources.get(config)
    stuck = source.annotations.paths[0]
    release = __import__("threading").Event()
    real_read = decode.VideoDecoder.read

    def read(self, path, *args, **kwargs):
        if path == stuck:
            release.wait(30)
        return real_read(self, path, *args, **kwargs)

    monkeypatch.setattr(decode.VideoDecoder, "read", read)
    config.data.shuffle = False  # position 0 reads row 0, the stuck file
    from devias_jax.prefetch import DevicePrefetcher

    with streams.train_batches(config, global_batch_size=2, process_index=0, process_count=1, seed=0,
                               source=source) as stream:
        prefetcher = DevicePrefetcher(stream, place=lambda batch: batch, timeout_s=1.0,
                                      describe_stuck=stream.describe_stuck)
        try:
            with pytest.raises(TimeoutError) as info:
                next(prefetcher)
            assert stuck in str(info.value) and "being read" in str(info.value)
            assert [name for name, _ in stream.files_in_flight()] == [stuck]
        finally:
            release.set()
            prefetcher.close()
    assert stream.files_in_flight() == []


def test_train_stream_validation(root):
    config = data_config(root)
    with pytest.raises(ValueError, match="not divisible"):
        _train(config, process_count=3)
    with _train(config) as stream:
        assert len(stream) == 24 // GLOBAL_BATCH and stream.step == 0
        next(stream)
        assert stream.step == 1
        assert TINY.train_per_action * TINY.num_actions == len(stream.source)
    assert stream._iterator is None  # the with-block closed it; iterating again resumes at step 1
    with stream:
        assert next(stream)["index"].shape == (GLOBAL_BATCH,) and stream.step == 2


@pytest.mark.slow
def test_scripts_with_closed_streams_exit_promptly(root, tmp_path):
    """A process that reads a train and an eval stream inside `with` blocks exits as soon as it is done:
    nothing is left for interpreter exit (no atexit hook exists to do it)."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "read_streams.py"
    script.write_text(textwrap.dedent(f"""
        from devias_jax.data import streams
        from tests.data_helpers import data_config
        config = data_config({root!r})
        with streams.train_batches(config, global_batch_size=8, process_index=0, process_count=1, seed=0) as train:
            next(train)
        with streams.eval_batches(config, config.data.train_list, batch_size=4, process_index=0,
                                  process_count=1) as evaluation:
            next(evaluation)
        print("batches read", flush=True)
    """))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo}
    # A hang shows up as the timeout (generous: the run itself takes seconds); no timing is asserted.
    result = subprocess.run([sys.executable, str(script)], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "batches read" in result.stdout


def test_randaugment_fill_colour_ours_and_official():
    """A geometric op leaves the frame's corners to the fill colour: timm's ImageNet mean by default,
    the VideoMAE loader's mid grey under loss.official_compat (through augment.official_fill)."""
    import ml_collections

    from devias_jax.data import augment

    settings = ml_collections.ConfigDict(dict(crop_area=(1.0, 1.0), crop_aspect=(1.0, 1.0), flip=False,
                                              rand_augment_n=0, rand_augment_m=7.0, rand_augment_mstd=0.0,
                                              rand_augment_prob=1.0, colour_jitter=0.0))
    frames = np.full((2, 32, 32, 3), 255, np.uint8)
    rotate = augment._geometric_matrix("Rotate", 1.0, 1.0, 32)  # 30 degrees: corners come from outside
    for official, fill in ((False, augment.FILL), (True, augment.OFFICIAL_FILL)):
        settings.official_fill = official
        plan = augment.plan_clip(np.random.default_rng(0), 32, 32, 32, settings)
        assert plan.fill == fill
        plan = dataclasses.replace(plan, matrix=rotate[:2].reshape(-1))
        out = augment.apply_plan(frames, plan, 32)
        assert tuple(out[0, 0, 0]) == fill and tuple(out[0, 16, 16]) == (255, 255, 255)
