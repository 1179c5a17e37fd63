"""Image datasets as clips (data.source image_folder / tfds): batch contract, determinism, resume,
disjoint per-process slices, one evaluation view, lists and class files, bad images, TFDS, config checks."""

import os

import numpy as np
import pytest

from configs import common
from devias_jax import config_validation
from devias_jax.data import annotations, images, sources, streams, tf_setup
from devias_jax.evaluators.suites import open_suites
from tests.teacher_helpers import scene_names, teacher_config, write_scene_images

GLOBAL_BATCH = 8  # 24 training images: 3 steps per epoch


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("scene_images"))
    write_scene_images(root, "train", per_scene=6, seed=0)
    write_scene_images(root, "val", per_scene=2, seed=1)
    return root


def _config(root, **overrides):
    return teacher_config(root, **{"train.batch_size": GLOBAL_BATCH, **overrides})


def _train(config, seed=0, start_step=0, process_index=0, process_count=1, global_batch=GLOBAL_BATCH):
    return streams.train_batches(config, global_batch_size=global_batch, process_index=process_index,
                                 process_count=process_count, seed=seed, start_step=start_step)


def _take(stream, steps):
    """`steps` batches of a fresh stream, which is closed afterwards."""
    with stream:
        return [next(stream) for _ in range(steps)]


def _eval(config, name, batch_size):
    with streams.eval_batches(config, name, batch_size=batch_size, process_index=0, process_count=1) as stream:
        batches = list(stream)
        assert len(batches) == len(stream)
        return batches


def test_image_folder_batches_contract_determinism_and_resume(image_root):
    config = _config(image_root)
    train = sources.get(config).images  # sources.get chooses by data.source
    assert isinstance(train, images.FileImages) and len(train) == 24
    assert train.class_names == tuple(scene_names())
    assert np.bincount(train.labels).tolist() == [6, 6, 6, 6]
    first = _take(_train(config, seed=5), 5)  # crosses the epoch boundary after step 3
    for batch in first:
        assert set(batch) == {"clips", "action", "scene", "index", "substituted"}
        assert batch["clips"].shape == (GLOBAL_BATCH, 4, 32, 32, 3) and batch["clips"].dtype == np.uint8
        for key in ("action", "scene", "index"):
            assert batch[key].shape == (GLOBAL_BATCH,) and batch[key].dtype == np.int32
        np.testing.assert_array_equal(batch["scene"], train.labels[batch["index"]])
        assert (batch["action"] == -1).all()  # image_task='scene': the class is the scene label
        # each clip is one augmented image repeated in time
        np.testing.assert_array_equal(batch["clips"], np.repeat(batch["clips"][:, :1], 4, axis=1))
    epoch0 = np.concatenate([b["index"] for b in first[:3]])
    assert sorted(epoch0.tolist()) == list(range(24))
    resumed = _take(_train(config, seed=5, start_step=2), 3)
    for expected, got in zip(first[2:], resumed):
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
    other = _take(_train(config, seed=6), 1)[0]
    assert not np.array_equal(other["index"], first[0]["index"])
    # the class can also be the action label (an image classifier)
    action_config = _config(image_root, **{"data.image_task": "action", "model.num_actions": 4})
    batch = next(_train(action_config, seed=5))
    np.testing.assert_array_equal(batch["action"], first[0]["scene"])
    assert (batch["scene"] == -1).all()


@pytest.mark.parametrize("process_count", [2, 4])
def test_image_folder_processes_read_disjoint_slices_of_the_global_batch(image_root, process_count):
    config = _config(image_root)
    single = _take(_train(config, seed=1), 3)
    parts = [_take(_train(config, seed=1, process_index=p, process_count=process_count), 3)
             for p in range(process_count)]
    for step in range(3):
        indices = [part[step]["index"] for part in parts]
        assert all(len(i) == GLOBAL_BATCH // process_count for i in indices)
        assert len(set(np.concatenate(indices).tolist())) == GLOBAL_BATCH  # disjoint
        for key in ("clips", "scene", "index"):  # together: exactly the single-process global batch
            np.testing.assert_array_equal(np.concatenate([part[step][key] for part in parts]), single[step][key])
    epoch = np.concatenate([part[step]["index"] for part in parts for step in range(3)])
    assert sorted(epoch.tolist()) == list(range(24))


def test_image_eval_uses_one_centred_view_repeated_in_time(tmp_path, image_root):
    # A 32x64 image, red left half and blue right half: the centred 32x32 crop is half red, half blue.
    from PIL import Image

    for name in scene_names()[:2]:
        os.makedirs(tmp_path / "val" / name)
    pixels = np.zeros((32, 64, 3), np.uint8)
    pixels[:, :32, 0] = 255
    pixels[:, 32:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "val" / scene_names()[1] / "split.png")
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(tmp_path / "val" / scene_names()[0] / "grey.png")
    config = _config(str(tmp_path), **{"data.train_list": os.path.join(image_root, "train")})
    batches = _eval(config, "val", batch_size=4)
    assert len(batches) == 1
    batch = batches[0]
    assert batch["clips"].shape == (4, 1, 4, 32, 32, 3)  # one view of T repeated frames
    assert batch["valid"].tolist() == [True, True, False, False] and batch["index"].tolist() == [0, 1, -1, -1]
    assert batch["scene"].tolist()[:2] == [0, 1] and (batch["action"] == -1).all()
    grey, split = batch["clips"][0, 0], batch["clips"][1, 0]
    assert (grey == 90).all()
    assert (split[:, :, :16, 0] == 255).all() and (split[:, :, :16, 2] == 0).all()
    assert (split[:, :, 16:, 2] == 255).all() and (split[:, :, 16:, 0] == 0).all()
    # evaluation folders map class names onto the training folder's classes
    os.makedirs(tmp_path / "val" / "unknown_scene")
    Image.fromarray(pixels).save(tmp_path / "val" / "unknown_scene" / "x.png")
    images._scan_folder.cache_clear()
    with pytest.raises(annotations.AnnotationError, match="unknown_scene"):
        open_suites(config)


def test_image_lists_classes_file_and_label_checks(tmp_path, image_root):
    train_dir = os.path.join(image_root, "train")
    files = sorted(os.listdir(os.path.join(train_dir, scene_names()[2])))[:3]
    listing = tmp_path / "list.txt"  # Places365 style: a leading '/' is relative to data.root
    listing.write_text("".join(f"/train/{scene_names()[2]}/{f} 2\n" for f in files))
    config = _config(image_root, **{"data.train_list": str(listing)})
    listed = sources.get(config).images
    assert listed.labels.tolist() == [2, 2, 2] and all(os.path.isfile(p) for p in listed.paths)
    batch = _take(_train(config, global_batch=2), 1)[0]
    assert batch["scene"].tolist() == [2, 2]
    # a classes file fixes the label order
    classes = tmp_path / "classes.txt"
    classes.write_text("\n".join(reversed(scene_names())) + "\n")
    reordered = sources.get(_config(image_root, **{"data.classes_file": str(classes)})).images
    assert reordered.class_names == tuple(reversed(scene_names()))
    assert reordered.labels[np.asarray(reordered.paths) == os.path.join(train_dir, scene_names()[0], "0000.png")] == 3
    # more classes than the model has: named with the key
    with pytest.raises(annotations.AnnotationError, match="config.model.num_scenes=3"):
        sources.get(_config(image_root, **{"model.num_scenes": 3}))
    with pytest.raises(annotations.AnnotationError, match="neither"):
        sources.get(_config(image_root, **{"data.train_list": "nowhere"}))


def test_unreadable_images_are_counted_and_replaced(tmp_path):
    root = str(tmp_path)
    write_scene_images(root, "train", per_scene=2, seed=0)
    bad = os.path.join(root, "train", scene_names()[0], "broken.png")
    with open(bad, "wb") as handle:
        handle.write(b"not an image")
    config = _config(root, **{"data.max_failure_fraction": 0.5})
    with _train(config, global_batch=9) as stream:
        batch = next(stream)  # one epoch of 9 images: the broken one is replaced by a readable draw
        assert batch["clips"].shape[0] == 9 and set(stream.failures.bad) == {bad}
        row = stream.source.images.paths.index(bad)
    assert row not in batch["index"].tolist() and batch["substituted"].sum() == 1
    evaluation = _eval(config, "train", batch_size=9)[0]
    assert evaluation["valid"].tolist() == [i != row for i in range(9)]


# ------------------------------------------------------------------------------------------ TFDS

def _tiny_tfds(data_dir: str) -> None:
    tf_setup.import_tf()
    import tensorflow_datasets as tfds

    class DeviasTinyScenes(tfds.core.GeneratorBasedBuilder):
        """Noise images whose mean colour channel is the label (3 classes), prepared as ArrayRecord."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=["red", "green", "blue"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(12, 0), "validation": self._generate_examples(5, 1)}

        def _generate_examples(self, count, seed):
            rng = np.random.default_rng(seed)
            for i in range(count):
                image = rng.integers(0, 60, (24, 40, 3), dtype=np.uint8)
                image[..., i % 3] = 200
                yield i, {"image": image, "label": i % 3}

    DeviasTinyScenes(data_dir=data_dir, file_format="array_record").download_and_prepare()


def test_tfds_source_reads_records_by_index(tmp_path):
    data_dir = str(tmp_path / "tfds")
    _tiny_tfds(data_dir)
    config = _config("", **{"data.source": "tfds", "data.tfds_name": "devias_tiny_scenes",
                            "data.tfds_data_dir": data_dir, "data.train_list": "train",
                            "model.num_scenes": 3, "augment.flip": False})
    config.eval.suites = {"val": common.suite("validation", "scene", "seen")}
    config_validation.validate(config)
    lists = {"train": sources.get(config), "val": open_suites(config)["val"][0][1]}
    assert len(lists["train"]) == 12 and len(lists["val"]) == 5 and lists["train"].images.num_classes == 3
    batches = _take(_train(config, seed=2, global_batch=6), 2)
    epoch = np.concatenate([b["index"] for b in batches])
    assert sorted(epoch.tolist()) == list(range(12))
    for batch in batches:
        # labels come with each record (TFDS shuffles records while preparing: row != example key)
        colour = batch["clips"].reshape(6, -1, 3).mean(axis=1).argmax(axis=-1)
        np.testing.assert_array_equal(colour, batch["scene"])
    again = _take(_train(config, seed=2, start_step=1, global_batch=6), 1)[0]
    for key in again:
        np.testing.assert_array_equal(again[key], batches[1][key])
    evaluation = _eval(config, "validation", batch_size=4)
    assert len(evaluation) == 2 and evaluation[0]["clips"].shape == (4, 1, 4, 32, 32, 3)
    scene = np.concatenate([b["scene"][b["valid"]] for b in evaluation])
    assert sorted(scene.tolist()) == [0, 0, 1, 1, 2]
    colour = np.concatenate([b["clips"][b["valid"]].reshape(-1, 4 * 32 * 32, 3).mean(axis=1).argmax(-1)
                             for b in evaluation])
    np.testing.assert_array_equal(colour, scene)
    # missing dataset: a clear message, nothing downloaded
    config.data.tfds_name = "devias_tiny_scenes_missing"
    with pytest.raises(annotations.AnnotationError, match="tfds build devias_tiny_scenes_missing"):
        sources.get(config)


def test_config_checks_for_image_sources(image_root):
    config = _config(image_root)
    config.data.scene_source = "teacher"
    with pytest.raises(config_validation.ConfigError, match="config.data.scene_source='list'"):
        config_validation.validate(config)
    config = _config(image_root, **{"data.source": "tfds"})
    with pytest.raises(config_validation.ConfigError, match="config.data.tfds_name"):
        config_validation.validate(config)
    config = _config(image_root, **{"data.source": "frames"})
    with pytest.raises(config_validation.ConfigError, match="config.data.source"):
        config_validation.validate(config)
