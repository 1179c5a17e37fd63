"""Checkpoint conversion: parity with HuggingFace VideoMAE, every file layout, and hostile files."""

import collections
import os

import numpy as np
import pytest
import torch

from devias_jax import converted, load_model, torch_reader
from tests.helpers import random_clips, tiny_vit_config
from tests.torch_oracles import hf_forward, hf_model, pretraining_layout, to_videomae_names

ATOL = 1e-5


def _check(predictor, reference, clips, keys):
    out = predictor(clips)
    for key in keys:
        np.testing.assert_allclose(np.asarray(out[key]), reference[key], rtol=0, atol=ATOL, err_msg=key)


@pytest.fixture(scope="module")
def classifier():
    return hf_model(use_mean_pooling=True, num_labels=7, seed=0)


@pytest.fixture(scope="module")
def encoder():
    return hf_model(use_mean_pooling=False, seed=1)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_huggingface_classifier_parity(tmp_path, classifier, fmt):
    clips = random_clips()
    reference = hf_forward(classifier, clips)
    path = str(tmp_path / f"hf.{fmt}")
    if fmt == "pth":
        torch.save(classifier.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, path)
    predictor = load_model(tiny_vit_config("mean", 7), path)
    assert not predictor.report.missing and not predictor.report.unused
    _check(predictor, reference, clips, ["tokens", "logits"])


def test_huggingface_encoder_parity(tmp_path, encoder):
    clips = random_clips(seed=3)
    path = str(tmp_path / "enc.bin")
    torch.save(encoder.state_dict(), path)
    _check(load_model(tiny_vit_config("none"), path), hf_forward(encoder, clips), clips, ["tokens"])


def test_huggingface_mean_pooling_encoder_reports_missing_fc_norm(tmp_path):
    model = hf_model(use_mean_pooling=True, seed=2)
    path = str(tmp_path / "enc.pth")
    torch.save(model.state_dict(), path)
    with pytest.raises(torch_reader.CheckpointError, match="fc_norm"):
        load_model(tiny_vit_config("mean"), path)
    predictor = load_model(tiny_vit_config("mean"), path, strict=False)
    assert predictor.report.missing == ["fc_norm/bias", "fc_norm/scale"]
    clips = random_clips(seed=4)
    _check(predictor, hf_forward(model, clips), clips, ["tokens"])


@pytest.mark.parametrize("container", ["model", "module", "top", "ddp"])
@pytest.mark.parametrize("legacy", [False, True])
def test_original_videomae_finetune_layouts(tmp_path, classifier, container, legacy):
    weights = to_videomae_names(classifier.state_dict())
    if container == "ddp":
        weights = collections.OrderedDict((f"module.{k}", v) for k, v in weights.items())
    blob = weights if container in ("top", "ddp") else {container: weights, "epoch": 29}
    path = str(tmp_path / "ft.pth")
    torch.save(blob, path, _use_new_zipfile_serialization=not legacy)
    clips = random_clips(seed=5)
    _check(load_model(tiny_vit_config("mean", 7), path), hf_forward(classifier, clips), clips,
           ["tokens", "logits"])


def test_original_videomae_pretraining_layout(tmp_path, encoder):
    weights = to_videomae_names(encoder.state_dict())
    path = str(tmp_path / "pretrain.pth")
    torch.save(pretraining_layout(weights, 64), path)
    predictor = load_model(tiny_vit_config("none"), path)
    assert "mask_token" in predictor.report.dropped and "decoder.head.weight" in predictor.report.dropped
    assert not predictor.report.unused
    clips = random_clips(seed=6)
    _check(predictor, hf_forward(encoder, clips), clips, ["tokens"])


def test_half_precision_checkpoints_load_as_float32(tmp_path, classifier):
    weights = collections.OrderedDict((k, v.half()) for k, v in to_videomae_names(classifier.state_dict()).items())
    path = str(tmp_path / "half.pth")
    torch.save({"model": weights}, path)
    predictor = load_model(tiny_vit_config("mean", 7), path)
    kernel = predictor.model.blocks[0].attn.qkv.kernel[...]
    assert kernel.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(kernel), weights["blocks.0.attn.qkv.weight"].float().numpy().T)


def test_converted_directory_round_trip(tmp_path, classifier):
    from scripts.convert_checkpoint import convert_file

    path = str(tmp_path / "ft.pth")
    torch.save({"module": to_videomae_names(classifier.state_dict())}, path)
    out_dir = str(tmp_path / "converted")
    report = convert_file(tiny_vit_config("mean", 7), path, out_dir)
    assert os.path.isfile(os.path.join(out_dir, converted.CONVERSION_FILE)) and not report.missing
    clips = random_clips(seed=7)
    _check(load_model(tiny_vit_config("mean", 7), out_dir), hf_forward(classifier, clips), clips,
           ["tokens", "logits"])
    with pytest.raises(FileExistsError):
        convert_file(tiny_vit_config("mean", 7), path, out_dir)


def test_shape_mismatch_names_key_and_both_shapes(tmp_path, classifier):
    path = str(tmp_path / "ft.pth")
    torch.save({"model": to_videomae_names(classifier.state_dict())}, path)
    with pytest.raises(torch_reader.CheckpointError) as error:
        load_model(tiny_vit_config("mean", 9), path)
    message = str(error.value)
    assert "'head.weight'" in message and "(7, 64)" in message and "(64, 9)" in message


def test_malicious_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for legacy in (False, True):
        path = str(tmp_path / f"evil{legacy}.pth")
        torch.save({"model": {"w": torch.zeros(2)}, "payload": Payload()}, path,
                   _use_new_zipfile_serialization=not legacy)
        with pytest.raises(torch_reader.UnsafeCheckpointError, match="system"):
            torch_reader.read_checkpoint(path)
        assert not marker.exists()


def test_harmless_objects_in_checkpoints_are_inert(tmp_path):
    import argparse

    path = str(tmp_path / "with_args.pth")
    torch.save({"model": {"w": torch.arange(6.0).reshape(2, 3).t()},
                "args": argparse.Namespace(lr=1e-3), "shape": torch.Size([2, 3])}, path)
    loaded = torch_reader.read_torch_file(path)
    np.testing.assert_array_equal(loaded["model"]["w"], np.arange(6.0, dtype=np.float32).reshape(2, 3).T)
    assert loaded["args"].state == {"lr": 1e-3} and loaded["shape"] == (2, 3)


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_and_empty_files_give_clear_errors(tmp_path, legacy):
    path = tmp_path / "full.pth"
    torch.save({"model": {"w": torch.randn(64, 64)}}, str(path), _use_new_zipfile_serialization=not legacy)
    data = path.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(torch_reader.CheckpointError, match="truncated|corrupt"):
        torch_reader.read_checkpoint(str(tmp_path / "cut.pth"))
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(torch_reader.CheckpointError, match="empty"):
        torch_reader.read_checkpoint(str(tmp_path / "empty.pth"))
    with pytest.raises(torch_reader.CheckpointError, match="no such"):
        torch_reader.read_checkpoint(str(tmp_path / "missing.pth"))
