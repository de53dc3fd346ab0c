"""Draw the IB Panel app icon and write the PNG set, a Windows .ico and a macOS .icns.

Run once after changing the design (the outputs are checked in under resources/icons/):
    QT_QPA_PLATFORM=offscreen .venv/bin/python packaging/make_icons.py
Drawn with Qt's QPainter (already a dependency), and the .ico / .icns containers are written
by hand (both accept PNG payloads), so no image library is needed.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import (  # noqa: E402
    QBrush,
    QColor,
    QGuiApplication,
    QImage,
    QLinearGradient,
    QPainter,
    QPainterPath,
    QPen,
)

ICON_DIR = Path(__file__).resolve().parents[1] / "resources" / "icons"
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512, 1024)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# icns element types that carry PNG data, by pixel size (Apple's icon family format).
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
    (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256), (b"ic14", 512),
)

# (open, close, low, high) in a 0..1 band, left to right: a calm up-trend, last candle green.
CANDLES = ((0.30, 0.42, 0.22, 0.50), (0.42, 0.36, 0.30, 0.52), (0.38, 0.58, 0.34, 0.66), (0.58, 0.78, 0.52, 0.86))
GREEN = QColor("#2ecc71")
RED = QColor("#ff5c5c")


def draw_icon(size: int) -> QImage:
    """The icon at ``size`` px: candles on a rounded dark-blue tile, drawn in a 1024 unit space."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.scale(size / 1024.0, size / 1024.0)

    tile = QRectF(40, 40, 944, 944)
    gradient = QLinearGradient(QPointF(0, 40), QPointF(0, 984))
    gradient.setColorAt(0.0, QColor("#1f3a5f"))
    gradient.setColorAt(1.0, QColor("#0b1726"))
    painter.setPen(QPen(QColor("#3d6a9e"), 16))
    painter.setBrush(QBrush(gradient))
    painter.drawRoundedRect(tile, 200, 200)

    # Faint grid lines: reads as "a chart" even at 16 px.
    painter.setPen(QPen(QColor(255, 255, 255, 38), 10))
    for y in (330, 512, 694):
        painter.drawLine(QPointF(150, y), QPointF(874, y))

    left, band_top, band_height, pitch, body_width = 190, 180, 660, 180, 110
    for i, (open_, close, low, high) in enumerate(CANDLES):
        colour = GREEN if close >= open_ else RED
        x_mid = left + i * pitch + body_width / 2

        def y_of(v: float) -> float:
            return band_top + (1.0 - v) * band_height

        painter.setPen(QPen(colour, 26, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.drawLine(QPointF(x_mid, y_of(high)), QPointF(x_mid, y_of(low)))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        top, bottom = y_of(max(open_, close)), y_of(min(open_, close))
        painter.drawRoundedRect(QRectF(x_mid - body_width / 2, top, body_width, max(bottom - top, 24)), 18, 18)

    # The trend line through the closes, in white, ending in an arrow head.
    path = QPainterPath(QPointF(170, 760))
    path.lineTo(QPointF(420, 600))
    path.lineTo(QPointF(600, 650))
    path.lineTo(QPointF(850, 330))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(QColor("#ffffff"), 34, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
    painter.drawPath(path)
    head = QPainterPath(QPointF(880, 290))
    head.lineTo(QPointF(880, 420))
    head.lineTo(QPointF(770, 330))
    head.closeSubpath()
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor("#ffffff"))
    painter.drawPath(head)
    painter.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError("Qt could not encode PNG")
    buffer.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """A Windows .ico holding PNG images (supported by Windows Vista and later)."""
    sizes = sorted(pngs)
    header = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(header) + 16 * len(sizes)
    entries, payload = b"", b""
    for px in sizes:
        data = pngs[px]
        dim = 0 if px >= 256 else px  # 0 means 256 in the directory entry
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset + len(payload))
        payload += data
    return header + entries + payload


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    """A macOS .icns whose elements are PNG images (macOS 10.7 and later)."""
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[px])) + pngs[px] for kind, px in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    ICON_DIR.mkdir(parents=True, exist_ok=True)
    pngs = {px: png_bytes(draw_icon(px)) for px in PNG_SIZES}
    for px, data in pngs.items():
        (ICON_DIR / f"ibpanel-{px}.png").write_bytes(data)
    (ICON_DIR / "ibpanel.ico").write_bytes(ico_bytes({px: pngs[px] for px in ICO_SIZES}))
    (ICON_DIR / "ibpanel.icns").write_bytes(icns_bytes(pngs))
    print(f"icons written to {ICON_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
