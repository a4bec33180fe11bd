"""The report as a document: its parts (tables, text, headings, the graph, pictures), and
how one document is written twice from the same data, `report.md` and `report.html`,
through the jinja2 templates in `templates/`. The HTML page is self-contained: the
graph's SVG inline, the pictures as data URIs, no script and nothing fetched, so it
opens from disk anywhere. What goes in a report is `report.py`'s.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..core.files import write_text


@dataclass
class Table:
    head: list[str]
    rows: list[list[str]]
    attrs: list[list[str]] | None = None
    """Per cell, its HTML attributes (a verdict's class, a heat map's colour), made here
    from numbers and fixed words only."""
    kind: str = "table"


@dataclass
class Text:
    text: str
    small: bool = False
    kind: str = "text"


@dataclass
class Heading:
    text: str
    kind: str = "heading"


@dataclass
class Lines:
    lines: list[str]
    kind: str = "lines"


@dataclass
class Picture:
    caption: str
    path: str
    """Relative to the run directory."""
    data: str = ""
    """The picture as a data URI (HTML)."""


@dataclass
class Graph:
    path: str | None
    """graph.svg when graphviz drew it, else None."""
    svg: str = ""
    text: str = ""
    kind: str = "graph"


@dataclass
class Pictures:
    pictures: list[Picture]
    kind: str = "pictures"


Part = Table | Text | Heading | Lines | Graph | Pictures


@dataclass
class Section:
    title: str
    parts: list[Part] = field(default_factory=list)
    level: int = 2

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


@dataclass
class Report:
    title: str
    intro: str
    quick: bool
    sections: list[Section]


def write_reports(report_: Report, out: Path) -> list[Path]:
    """`report.md` and `report.html` in `out`."""
    return [write_text(out / "report.md", markdown(report_)), write_text(out / "report.html", html(report_, out))]


def markdown(report_: Report) -> str:
    return _template("report.md.j2").render(report=report_, quick_note=QUICK_NOTE).rstrip("\n") + "\n"


def html(report_: Report, out: Path) -> str:
    for section in report_.sections:
        for part in section.parts:
            if isinstance(part, Pictures):
                for picture in part.pictures:
                    picture.data = _data_uri(out / picture.path)
            elif isinstance(part, Graph) and part.path:
                part.svg = _inline_svg((out / part.path).read_text())
    return _template("report.html.j2").render(report=report_)


QUICK_NOTE = "**Quick run: few steps, numbers are smoke-test values.**"


def _template(name: str):
    import jinja2

    environment = jinja2.Environment(loader=jinja2.PackageLoader("dgmc.report", "templates"),
                                     autoescape=name.endswith(".html.j2"), trim_blocks=True, lstrip_blocks=True,
                                     keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return environment.get_template(name)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _inline_svg(text: str) -> str:
    """graphviz's SVG without its XML prolog and doctype, to sit inside the page."""
    start = text.find("<svg")
    return text[start:] if start >= 0 else ""
