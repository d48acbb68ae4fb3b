"""The text of a page as the field reading sees it: words with their boxes, grouped into segments and rows.

Whatever read the page — Tesseract on an image, or the text layer of a PDF — it ends up here in one shape:
- a **word** has its text, its box (pixels of the page as it was read) and the reader's confidence (0–1; a text
  layer is certain, 1.0);
- a **segment** is a run of words close together on one line: « Total HT », « 1 234,56 € », « Facturé à : JNO ».
  A gap wider than ``SEGMENT_GAP`` times the words' height ends it, so a label and a value pushed to the right
  margin are two segments of one row, and two columns never run into one another;
- a **row** is every segment at the same height across the page, left to right, so that a label in one column
  finds its value in the next.

Pure functions, no Django: ``invoices/scan.py`` builds pages from documents, ``invoices/scan_fields.py`` reads
them, and the tests build pages from text they write (``page_from_text``).
"""

from __future__ import annotations

import statistics
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

# A gap this many times the words' height splits a line into two segments (about three spaces).
SEGMENT_GAP = 1.5
# ``page_from_text``: the box of one character, in the same pixels as a page of OCR.
CHAR_WIDTH = 10
LINE_HEIGHT = 20
CHAR_HEIGHT = 16

METHOD_OCR = "ocr"
METHOD_TEXT = "text"


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    def union(self, other: Box) -> Box:
        return Box(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
        )

    def overlaps_horizontally(self, other: Box, slack: int = 0) -> bool:
        return self.left - slack < other.right and other.left - slack < self.right


@dataclass(frozen=True)
class Word:
    text: str
    box: Box
    confidence: float = 1.0


@dataclass(frozen=True)
class Segment:
    words: tuple[Word, ...]
    page: int = 1
    row: int = 0

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def box(self) -> Box:
        box = self.words[0].box
        for word in self.words[1:]:
            box = box.union(word.box)
        return box

    @property
    def confidence(self) -> float:
        return min(word.confidence for word in self.words)


@dataclass(frozen=True)
class Page:
    number: int
    rows: tuple[tuple[Segment, ...], ...] = ()
    width: int = 0
    height: int = 0
    method: str = METHOD_OCR
    # Degrees the image was turned (clockwise) before it was read: 0, 90, 180, 270, plus the deskew.
    rotation: float = 0.0
    seconds: float = 0.0
    # Why the page could not be read (French); the page then has no rows.
    error: str = ""

    @property
    def segments(self) -> Iterable[Segment]:
        for row in self.rows:
            yield from row

    @property
    def text(self) -> str:
        return "\n".join("   ".join(segment.text for segment in row) for row in self.rows)

    @property
    def word_count(self) -> int:
        return sum(len(segment.words) for segment in self.segments)

    @property
    def confidence(self) -> float:
        """The mean confidence of the page's words (0 for a page with none)."""
        words = [word.confidence for segment in self.segments for word in segment.words]
        return statistics.fmean(words) if words else 0.0


@dataclass
class _Row:
    segments: list[tuple[Word, ...]] = field(default_factory=list)
    middles: list[float] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)

    @property
    def middle(self) -> float:
        return statistics.fmean(self.middles)

    @property
    def height(self) -> float:
        return statistics.median(self.heights)


def _split_line(words: list[Word]) -> list[tuple[Word, ...]]:
    words = sorted(words, key=lambda word: word.box.left)
    height = statistics.median(word.box.height for word in words) or 1
    segments: list[list[Word]] = [[words[0]]]
    for word in words[1:]:
        if word.box.left - segments[-1][-1].box.right > SEGMENT_GAP * height:
            segments.append([word])
        else:
            segments[-1].append(word)
    return [tuple(segment) for segment in segments]


def page_from_words(
    number: int,
    lines: Iterable[tuple[Hashable, Word]],
    *,
    width: int = 0,
    height: int = 0,
    method: str = METHOD_OCR,
    rotation: float = 0.0,
    seconds: float = 0.0,
) -> Page:
    """A page from words, each with the key of the line its reader put it on (Tesseract's block, paragraph and
    line numbers; a line of text). Lines are cut into segments; segments at the same height make a row."""
    by_line: dict[Hashable, list[Word]] = {}
    for key, word in lines:
        if word.text.strip():
            by_line.setdefault(key, []).append(word)
    pieces = [segment for words in by_line.values() for segment in _split_line(words)]
    pieces.sort(key=lambda words: (words[0].box.top + words[0].box.bottom) / 2)
    rows: list[_Row] = []
    for words in pieces:
        box = words[0].box
        for word in words[1:]:
            box = box.union(word.box)
        # The same row when the middles are closer than half a line: a segment of a column printed a little
        # higher or lower than its neighbour still faces it.
        if rows and abs(box.middle - rows[-1].middle) <= 0.5 * max(rows[-1].height, box.height):
            rows[-1].segments.append(words)
            rows[-1].middles.append(box.middle)
            rows[-1].heights.append(box.height)
        else:
            rows.append(_Row([words], [box.middle], [box.height]))
    built = tuple(
        tuple(
            Segment(words, page=number, row=index)
            for words in sorted(row.segments, key=lambda segment: segment[0].box.left)
        )
        for index, row in enumerate(rows)
    )
    return Page(number, built, width=width, height=height, method=method, rotation=rotation, seconds=round(seconds, 3))


def page_from_text(text: str, number: int = 1, *, method: str = METHOD_TEXT, seconds: float = 0.0) -> Page:
    """A page from plain text laid out with spaces (``pdftotext -layout``, or a test's own): each character is a
    cell of ``CHAR_WIDTH`` × ``LINE_HEIGHT``, so columns made of spaces become segments and rows."""
    lines = [line.expandtabs() for line in text.splitlines()]
    words: list[tuple[Hashable, Word]] = []
    for index, line in enumerate(lines):
        column = 0
        for token in line.split(" "):
            if token:
                top = index * LINE_HEIGHT
                box = Box(column * CHAR_WIDTH, top, (column + len(token)) * CHAR_WIDTH, top + CHAR_HEIGHT)
                words.append((index, Word(token, box)))
            column += len(token) + 1
    width = max((len(line) for line in lines), default=0) * CHAR_WIDTH
    return page_from_words(number, words, width=width, height=len(lines) * LINE_HEIGHT, method=method, seconds=seconds)
