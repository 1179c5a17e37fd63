"""Re-encodes a video dataset to a smaller short side (H.264 .mp4), in parallel, keeping the lists valid.

  python -m scripts.prepare_videos --src=/data/ucf101/videos --dst=/data/ucf101_320 --short_side=320 \
      --lists=/data/ucf101/train.txt,/data/ucf101/val.txt --workers=16

Decoding full-resolution videos is what starves VideoMAE-style training; re-encoding once to a short
side of 256-320 makes every epoch cheaper. Every video named in the lists (paths relative to --src,
the first column) is written under --dst with the same relative path and an .mp4 extension; each list
is rewritten into --dst with the new paths and the other columns unchanged, so training uses
`--config.data.root=DST --config.data.train_list=train.txt`. Videos whose short side is already at most
--short_side are re-encoded at their size (or copied with --copy_small). Existing outputs are kept
(resumable); failures are reported at the end and their lines keep the new path (the pipeline skips
and counts them). HVU-style ids without an extension are looked up like the pipeline does.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor, as_completed

from absl import app, flags

flags.DEFINE_string("src", None, "dataset root the lists' paths are relative to")
flags.DEFINE_string("dst", None, "output root")
flags.DEFINE_list("lists", None, "annotation lists to convert (their first column is a path under --src)")
flags.DEFINE_integer("short_side", 320, "target short side in pixels (even)")
flags.DEFINE_integer("workers", os.cpu_count() or 1, "parallel encoder processes")
flags.DEFINE_integer("crf", 23, "x264 quality (lower = better, bigger)")
flags.DEFINE_string("preset", "veryfast", "x264 preset")
flags.DEFINE_float("max_fps", 0.0, "drop frames above this rate (0 = keep every frame; sampling uses frame indices)")
flags.DEFINE_boolean("copy_small", False, "copy videos that are already small enough instead of re-encoding")
flags.mark_flags_as_required(["src", "dst", "lists"])
FLAGS = flags.FLAGS


def target_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) with the short side at most `short_side`, aspect kept, both even."""
    if min(height, width) > short_side:
        if height <= width:
            height, width = short_side, round(width * short_side / height)
        else:
            height, width = round(height * short_side / width), short_side
    return height - height % 2, width - width % 2


def convert(source: str, target: str, short_side: int, crf: int, preset: str, max_fps: float,
            copy_small: bool) -> str:
    """Re-encodes one file; returns 'done', 'kept', 'copied' (raises on failure)."""
    import av

    if os.path.exists(target) and os.path.getsize(target) > 0:
        return "kept"
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = target + ".partial.mp4"
    with av.open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        height, width = target_size(stream.codec_context.height, stream.codec_context.width, short_side)
        if copy_small and min(stream.codec_context.height, stream.codec_context.width) <= short_side \
                and source.lower().endswith(".mp4"):
            shutil.copyfile(source, target)
            return "copied"
        rate = stream.average_rate or 25
        keep_every = max(1, round(float(rate) / max_fps)) if max_fps > 0 else 1
        with av.open(partial, "w", options={"movflags": "faststart"}) as output:
            encoder = output.add_stream("libx264", rate=max(1, round(float(rate) / keep_every)))
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.options = {"crf": str(crf), "preset": preset}
            count = 0
            for index, frame in enumerate(container.decode(stream)):
                if index % keep_every:
                    continue
                frame = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA")
                frame.pts = None
                for packet in encoder.encode(frame):
                    output.mux(packet)
                count += 1
            for packet in encoder.encode():
                output.mux(packet)
    if count == 0:
        os.remove(partial)
        raise RuntimeError("no frames decoded")
    os.replace(partial, target)
    return "done"


def _job(args):
    source, target = args[:2]
    try:
        return source, target, convert(*args), ""
    except Exception as error:  # noqa: BLE001 - report every failure at the end
        return source, target, "failed", f"{type(error).__name__}: {error}"


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from tqdm import tqdm

    from devias_jax.data.annotations import resolve, with_extension

    if FLAGS.short_side % 2:
        raise app.UsageError(f"--short_side={FLAGS.short_side} must be even (H.264 yuv420p)")
    rewritten: dict[str, list[str]] = {}
    jobs: dict[str, tuple] = {}
    for list_path in FLAGS.lists:
        lines = []
        with open(list_path) as handle:
            for number, line in enumerate(handle, start=1):
                fields = line.split()
                if not fields:
                    continue
                source = with_extension(resolve(FLAGS.src, fields[0]), "")
                if os.path.isdir(source):
                    raise app.UsageError(f"{list_path}:{number}: {source} is a frame folder; only videos are "
                                         "re-encoded")
                relative = os.path.relpath(source, FLAGS.src) if not os.path.isabs(fields[0]) else \
                    os.path.basename(source)
                new_path = os.path.splitext(relative)[0] + ".mp4"
                target = os.path.join(FLAGS.dst, new_path)
                jobs[target] = (source, target, FLAGS.short_side, FLAGS.crf, FLAGS.preset, FLAGS.max_fps,
                                FLAGS.copy_small)
                lines.append(" ".join([new_path] + fields[1:]))
        rewritten[list_path] = lines
    if len({job[0] for job in jobs.values()}) != len(jobs):
        raise app.UsageError("two source videos map to the same output path")
    failures, counts = [], {"done": 0, "kept": 0, "copied": 0, "failed": 0}
    with ProcessPoolExecutor(max(1, FLAGS.workers)) as pool:
        futures = [pool.submit(_job, job) for job in jobs.values()]
        for future in tqdm(as_completed(futures), total=len(futures), unit="video"):
            source, _, status, error = future.result()
            counts[status] += 1
            if error:
                failures.append(f"{source}: {error}")
    os.makedirs(FLAGS.dst, exist_ok=True)
    for list_path, lines in rewritten.items():
        out = os.path.join(FLAGS.dst, os.path.basename(list_path))
        with open(out, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        print(f"wrote {out} ({len(lines)} lines)")
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    if failures:
        print(f"{len(failures)} video(s) failed (the pipeline will skip and count them):")
        print("\n".join(f"  {f}" for f in failures))


if __name__ == "__main__":
    app.run(main)
