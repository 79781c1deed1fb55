"""A fake webcam for Chromium: a Y4M video showing a QR code, so the kiosk's
camera path (getUserMedia + jsQR) can be tested without hardware."""

from __future__ import annotations

from pathlib import Path

import segno

WIDTH, HEIGHT = 640, 480


def qr_video(text: str, path: Path, frames: int = 10) -> Path:
    """Write a short 4:2:0 Y4M clip of a black-on-white QR code of ``text``."""
    matrix = [list(row) for row in segno.make(text, error="m", micro=False).matrix]
    quiet = 4
    size = len(matrix) + 2 * quiet
    scale = min(WIDTH, HEIGHT) * 3 // 4 // size
    left = (WIDTH - size * scale) // 2
    top = (HEIGHT - size * scale) // 2
    luma = bytearray([235]) * (WIDTH * HEIGHT)  # white (video range)
    for row, cells in enumerate(matrix):
        for col, dark in enumerate(cells):
            if not dark:
                continue
            y0 = top + (row + quiet) * scale
            x0 = left + (col + quiet) * scale
            for y in range(y0, y0 + scale):
                luma[y * WIDTH + x0 : y * WIDTH + x0 + scale] = bytes([16]) * scale  # black
    chroma = bytes([128]) * ((WIDTH // 2) * (HEIGHT // 2))
    header = f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode()
    with path.open("wb") as out:
        out.write(header)
        for _ in range(frames):
            out.write(b"FRAME\n")
            out.write(luma)
            out.write(chroma)
            out.write(chroma)
    return path
