"""Charts for the console, drawn on the server with pygal: axes, day labels, the
values on the bars, and one scale shared by the rows being compared.

pygal writes its own ``<style>`` and ``<script>`` into the SVG; the console's
Content-Security-Policy allows neither (no inline style, no script at all), so they are
taken out here and the chart is styled by the console's stylesheet (its classes are
pygal's own). The SVG is inline in the page, readable without any script, and scales to
the width of a phone.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from xml.etree import ElementTree as ET

import pygal
from markupsafe import Markup

# pygal adds a meta-path hook (for its old ``pygal.maps`` plugin names) that lacks
# ``find_spec``: every import that reaches it warns. The console uses no maps.
sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG)
WIDTH, HEIGHT = 640, 160


def daily_bars(
    values: Sequence[int], days: Sequence[dt.date], *, top: int, title: str, day_label: str
) -> Markup:
    """A bar a day, labelled every seventh day, with every non-zero value printed, on a
    scale from 0 to ``top`` (the same for every row it is compared with)."""
    chart = pygal.Bar(
        width=WIDTH,
        height=HEIGHT,
        explicit_size=False,
        show_legend=False,
        js=[],
        css=[],
        no_prefix=True,
        disable_xml_declaration=True,
        range=(0, max(top, 1)),
        print_values=True,
        print_zeroes=False,
        show_minor_x_labels=False,
        x_labels_major_every=7,
        truncate_label=-1,
        margin=8,
        spacing=6,
    )
    chart.x_labels = [format(d, day_label) for d in days]
    high = max(top, 1)
    chart.y_labels = sorted({0, (high + 1) // 2, high})  # counts: whole numbers only
    chart.add(title, list(values))
    # Safe: ElementTree serialised it, escaping every text and attribute we passed in.
    return Markup(_without_style_or_script(chart.render(is_unicode=True), title))  # noqa: S704


def _without_style_or_script(svg: str, title: str) -> str:
    root = ET.fromstring(svg)  # noqa: S314  (pygal's own output, from our numbers)
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag.rsplit("}", 1)[-1]
            if tag in {"style", "script"} or "style" in child.attrib:
                parent.remove(child)
    for named in root.iter(f"{{{SVG}}}title"):
        named.text = title  # pygal's default says "Pygal"
    root.set("role", "img")
    root.set("aria-label", title)
    root.attrib.pop("id", None)
    return ET.tostring(root, encoding="unicode")
