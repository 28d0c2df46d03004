"""Small videos made with Debian's ffmpeg for the media library's tests (a test source pattern,
a second or two, 160 x 120): real files for ffprobe to read, no binary kept in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path


def make_video(
    target: Path,
    *,
    codec: str = "libx264",
    container: str | None = None,
    seconds: float = 2.0,
    noisy: bool = False,
) -> Path:
    """A ``seconds``-long video coded with ``codec`` in ``container`` (ffmpeg's ``-f``;
    default: the one the suffix says), written to ``target``.  ``noisy``: 320 x 240 of noise,
    losslessly coded, so that it is large (about 1.5 MB a second)."""
    size = "320x240" if noisy else "160x120"
    command = [
        "ffmpeg", "-v", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate=10",
        "-t", f"{seconds}", "-c:v", codec, "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    if noisy:
        command += ["-vf", "noise=alls=60:allf=t", "-qp", "0", "-preset", "ultrafast"]
    if container:
        command += ["-f", container]
    subprocess.run([*command, str(target)], check=True, timeout=120, capture_output=True)
    return target
