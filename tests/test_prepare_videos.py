"""scripts/prepare_videos.py: re-encodes to a short side and rewrites the lists so they stay valid."""

import subprocess
import sys

import numpy as np

from devias_jax.data import annotations, decode, synthetic
from tests.conftest import ROOT


def test_prepare_videos_reencodes_and_rewrites_lists(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(0)
    synthetic.write_mp4(str(src / "a" / "one.mp4"), rng.integers(0, 255, (12, 48, 80, 3), dtype=np.uint8))
    synthetic.write_mp4(str(src / "b" / "two.mp4"), rng.integers(0, 255, (9, 64, 32, 3), dtype=np.uint8))
    with open(tmp_path / "train.txt", "w") as handle:
        handle.write("a/one.mp4 3 1\nb/two 0 2\n")  # the second without extension, as in HVU lists
    dst = tmp_path / "dst"
    result = subprocess.run([sys.executable, "-m", "scripts.prepare_videos", f"--src={src}",
                             f"--dst={dst}", f"--lists={tmp_path / 'train.txt'}", "--short_side=32",
                             "--workers=1"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (dst / "train.txt").read_text() == "a/one.mp4 3 1\nb/two.mp4 0 2\n"
    ann = annotations.load_list(str(dst / "train.txt"), root=str(dst), num_actions=4, num_scenes=3,
                                check_files=True)
    decoder = decode.VideoDecoder()
    first = decoder.read(ann.paths[0], lambda n: np.arange(n))
    second = decoder.read(ann.paths[1], lambda n: np.arange(n))
    assert first.shape == (12, 32, 52, 3)  # short side 32, aspect kept (53 rounded down to even)
    assert second.shape == (9, 64, 32, 3)  # already small enough: re-encoded at its size
    again = subprocess.run([sys.executable, "-m", "scripts.prepare_videos", f"--src={src}",
                            f"--dst={dst}", f"--lists={tmp_path / 'train.txt'}", "--short_side=32"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "kept 2" in again.stdout  # resumable: existing outputs are kept
