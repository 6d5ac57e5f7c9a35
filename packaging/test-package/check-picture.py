"""Check a --screenshot picture of the demo host: run with the installed VirtStudio's Python.

    check-picture.py PNG SUMMARY_LINE

Passes when the picture is a real window (not blank) whose machine list shows
rows of text, and the app's own summary names as many machines as the installed
demo host holds.
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

from PySide6.QtGui import QImage

from virtstudio.core.demo import demo_fixture_path


def text_bands(image: QImage, left: int, right: int, top: int, bottom: int) -> int:
    """Runs of pixel rows holding dark (text) pixels in the given box."""
    bands = 0
    inside = False
    for y in range(top, bottom):
        dark = any(image.pixelColor(x, y).lightness() < 110 for x in range(left, right, 2))
        if dark and not inside:
            bands += 1
        inside = dark
    return bands


def main() -> int:
    path, summary = sys.argv[1], sys.argv[2]
    expected = len(ET.parse(demo_fixture_path()).getroot().findall("domain"))
    problems = []
    found = re.search(r"(\d+) machines? listed", summary)
    if found is None or int(found.group(1)) != expected:
        problems.append(f"the app said {summary!r}; the demo host has {expected} machines")
    image = QImage(path)
    if image.isNull():
        problems.append(f"{path} is no readable PNG")
    else:
        width, height = image.width(), image.height()
        colours = {image.pixel(x, y) for x in range(0, width, 7) for y in range(0, height, 7)}
        if width < 800 or height < 500 or len(colours) < 20:
            problems.append(f"the picture looks blank: {width}x{height}, {len(colours)} colours")
        # The machine list: the middle of the window's upper half, right of the sidebar.
        bands = text_bands(image, width // 4, width // 2, height // 12, height // 2)
        if bands < 10:
            problems.append(f"the machine list shows {bands} rows of text, not a list")
        else:
            print(f"picture {width}x{height}, {len(colours)} colours, {bands} rows of text "
                  f"in the machine list; {expected} machines listed")
    for problem in problems:
        print(f"check-picture: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
