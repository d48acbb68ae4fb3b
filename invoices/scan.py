"""Reading a paper invoice: the document's pages, one at a time, as words with their boxes (``invoices.scan_text``).

What comes in is recognised from its bytes, never from its name: a PDF (scanned pages, or a text layer), a TIFF
(one page or several), a JPEG or a PNG. Anything else is refused with a French reason (``ScanError``).

- A PDF page with a text layer is read without OCR (``pdftotext -layout``: the layout keeps columns apart, which
  is what the field reading needs). A page without one is rasterised alone (``pdftoppm``, ``RASTER_DPI``) and
  read by Tesseract. Poppler runs in a child process with a memory cap and a deadline: a PDF bomb costs one
  page's time, never the worker.
- An image is opened by Pillow (lazily: only the header) and each frame's size checked against the page caps
  *before* it is decoded, so a decompression bomb or a 1 × 10⁹ image is refused without being inflated.
- OCR is Tesseract (``pytesseract``, ``lang="fra+eng"``, ``image_to_data`` for words, boxes, confidences), one
  page at a time, each page under ``Limits.page_seconds``. A page that cannot be read in time, or at all,
  carries its French reason (``Page.error``) and the other pages still count.
- Orientation: a landscape page is first asked of Tesseract's orientation detection (``--psm 0``: a portrait
  sheet scanned at 90°), a slight skew (a sheet fed askew) is measured on a thumbnail by the projection profile
  and undone, and a page whose words still come out poor is asked again and read turned the right way up.
- Before OCR the page is binarised at Otsu's threshold (paper grey, JPEG noise and shaded headers otherwise make
  Tesseract drop lines) and read as one column of lines (``--psm 4``) that ``scan_text`` cuts at their gaps.
- Tesseract missing (or its French data) raises ``OcrUnavailable``, whose message the intake shows as is.

Only the pages' text leaves this module; the images are dropped page by page, so memory is bounded by one page
(``Limits.max_pixels``).
"""

from __future__ import annotations

import functools
import io
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from PIL import Image, ImageOps, UnidentifiedImageError

from .scan_text import METHOD_OCR, METHOD_TEXT, Box, Page, Word, page_from_text, page_from_words

# Tesseract's OpenMP threads spin against each other and against the other workers: on two shared cores one
# thread reads a page about five times faster (3 s instead of 18 s measured on a dense A4 page).
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

KIND_PDF = "pdf"
KIND_TIFF = "tiff"
KIND_JPEG = "jpeg"
KIND_PNG = "png"
KIND_LABELS = {KIND_PDF: "PDF", KIND_TIFF: "TIFF", KIND_JPEG: "JPEG", KIND_PNG: "PNG"}

LANGUAGES = ("fra", "eng")
RASTER_DPI = 300
# Below this, text is too small for Tesseract: images are enlarged to it (a 200 dpi scan reads better at 300).
MIN_OCR_DPI = 280
# A page whose PDF size would need a lower resolution to fit the pixel cap is refused: its text could not be read.
MIN_RASTER_DPI = 100
# A page has at least this many pixels on its short side, and at most ``MAX_ASPECT`` times more on its long side.
MIN_SIDE = 200
MAX_ASPECT = 8
# A text layer with fewer letters or digits than this is a scan with a stray caption, not a text page.
MIN_TEXT_LAYER_CHARS = 40
# Below this mean word confidence, or with fewer words, the page may be upside down or sideways: ask OSD.
POOR_CONFIDENCE = 0.6
POOR_WORDS = 25
OSD_MIN_CONFIDENCE = 1.0
# The skew search: ±MAX_SKEW degrees, by SKEW_STEP, on a thumbnail SKEW_THUMBNAIL pixels wide.
MAX_SKEW = 4.0
SKEW_STEP = 0.25
SKEW_THUMBNAIL = 700
MIN_DESKEW = 0.3
# Tesseract's « single column of text of variable sizes »: every line runs across the page, and
# ``scan_text`` cuts it into segments at its gaps. The automatic layout (3) dropped the lines of a boxed header
# beside the seller's address on scans of the set; 4 reads them, and faster.
PAGE_SEGMENTATION = 4


@dataclass(frozen=True)
class Limits:
    """What one document may cost. The intake takes them from its settings; the defaults suit an A4 scan."""

    max_pages: int = 20
    # Per page, after rasterising or decoding: A4 at 600 dpi is 35 million pixels.
    max_pixels: int = 40_000_000
    max_side: int = 20_000
    # Rasterising, deskewing and reading one page.
    page_seconds: float = 60.0
    # Address space of each Poppler child process.
    child_memory_bytes: int = 1536 * 1024 * 1024


class ScanError(Exception):
    """The document cannot be read at all (not a supported type, damaged, hostile); the message is French."""


class OcrUnavailable(Exception):
    """Tesseract, or its French data, is not installed: the invoice is created without pre-filled fields."""

    def __init__(self, detail: str = ""):
        message = _(
            "OCR indisponible : installez tesseract-ocr et tesseract-ocr-fra ; la facture est créée sans champs"
            " pré-remplis."
        )
        super().__init__(f"{message} ({detail})" if detail else message)
        self.detail = detail


class _PageTimeout(Exception):
    pass


class _PageUnreadable(Exception):
    pass


@dataclass(frozen=True)
class ScannedDocument:
    kind: str
    pages: tuple[Page, ...]
    # Pages in the file; more than ``len(pages)`` when the page cap cut it (an image file's frames are not counted
    # past the cap: there it is the cap plus one).
    page_count: int
    reasons: tuple[str, ...] = field(default=())

    @property
    def text(self) -> str:
        return "\n\f\n".join(page.text for page in self.pages)

    @property
    def read_pages(self) -> tuple[Page, ...]:
        return tuple(page for page in self.pages if not page.error)

    @property
    def ocr_used(self) -> bool:
        return any(page.method == METHOD_OCR and not page.error for page in self.pages)


def document_kind(data: bytes) -> str:
    """The document's type from its first bytes; ``ScanError`` for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return KIND_PNG
    if data[:3] == b"\xff\xd8\xff":
        return KIND_JPEG
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return KIND_TIFF
    # PDF readers accept the header anywhere in the first kilobyte (some scanners write a preamble).
    if b"%PDF-" in data[:1024]:
        return KIND_PDF
    raise ScanError(_("Format non reconnu : seuls les PDF, TIFF, JPEG et PNG sont lus."))


def read_document(data: bytes, *, limits: Limits | None = None) -> ScannedDocument:
    """Every page of the document (up to the page cap), read one at a time."""
    limits = limits or Limits()
    kind = document_kind(data)
    pages: list[Page] = []
    if kind == KIND_PDF:
        with tempfile.TemporaryDirectory(prefix="sfd-scan-") as folder:
            path = Path(folder) / "document.pdf"
            path.write_bytes(data)
            count, sizes = _pdf_pages(path, limits)
            for number in range(1, min(count, limits.max_pages) + 1):
                pages.append(_read_pdf_page(path, number, sizes.get(number), limits))
    else:
        count = 0
        for number, frame in enumerate(_frames(data, kind, limits), start=1):
            count = number
            if frame is _MORE:
                break
            pages.append(
                Page(number, error=frame) if isinstance(frame, str) else _read_image_page(frame, number, limits)
            )
    reasons = [page.error for page in pages if page.error]
    if count > limits.max_pages:
        unread = count - limits.max_pages
        if kind == KIND_PDF:
            reasons.append(
                ngettext(
                    "Document de %(count)d pages : seules les %(cap)d premières sont lues (%(unread)d page non lue).",
                    "Document de %(count)d pages : seules les %(cap)d premières sont lues (%(unread)d pages non lues).",
                    unread,
                )
                % {"count": count, "cap": limits.max_pages, "unread": unread}
            )
        else:
            # The frames of an image file are not counted past the cap: a hostile TIFF may chain thousands.
            reasons.append(
                _("Document de plus de %(cap)d pages : seules les %(cap)d premières sont lues.")
                % {"cap": limits.max_pages}
            )
    return ScannedDocument(kind, tuple(pages), count, tuple(reasons))


# --- PDF ---------------------------------------------------------------------------------------------------------


def _limit_child(memory: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return apply


def _poppler(args: list[str], *, seconds: float, limits: Limits) -> subprocess.CompletedProcess:
    """A Poppler program under a memory cap and a deadline. The cap is set by ``prlimit`` (util-linux) when it is
    there, so that it is safe from a threaded web server too (a ``preexec_fn`` is not: the page viewer counts pages
    in a web request); else by a ``preexec_fn``, which is safe in the worker's processes."""
    if shutil.which(args[0]) is None:
        raise ScanError(
            _("Lecture des PDF impossible : installez poppler-utils (%(program)s manquant).") % {"program": args[0]}
        )
    prlimit = shutil.which("prlimit")
    command = [prlimit, f"--as={limits.child_memory_bytes}", *args] if prlimit else args
    return subprocess.run(  # noqa: S603 — fixed programs, our own arguments
        command,
        capture_output=True,
        timeout=max(seconds, 1.0),
        preexec_fn=None if prlimit else _limit_child(limits.child_memory_bytes),
        check=False,
    )


_PAGES = re.compile(rb"^Pages:\s+(\d+)\s*$", re.MULTILINE)
_PAGE_SIZE = re.compile(rb"^Page\s+(\d+)\s+size:\s+([\d.]+) x ([\d.]+) pts", re.MULTILINE)
_PAGE_ROT = re.compile(rb"^Page\s+(\d+)\s+rot:\s+(\d+)", re.MULTILINE)


def _pdf_pages(path: Path, limits: Limits) -> tuple[int, dict[int, tuple[float, float]]]:
    """The number of pages and the size (points, as displayed) of each page under the cap."""
    try:
        info = _poppler(
            ["pdfinfo", "-f", "1", "-l", str(limits.max_pages), str(path)], seconds=limits.page_seconds, limits=limits
        )
    except subprocess.TimeoutExpired:
        raise ScanError(_("PDF refusé : sa structure n'a pas pu être lue dans le temps imparti.")) from None
    if info.returncode != 0:
        if b"password" in info.stderr.lower():
            raise ScanError(_("PDF protégé par un mot de passe : SFD ne peut pas le lire."))
        raise ScanError(_("PDF illisible ou endommagé."))
    found = _PAGES.search(info.stdout)
    if not found or int(found.group(1)) < 1:
        raise ScanError(_("PDF sans aucune page."))
    rotations = {int(m.group(1)): int(m.group(2)) % 180 for m in _PAGE_ROT.finditer(info.stdout)}
    sizes = {}
    for match in _PAGE_SIZE.finditer(info.stdout):
        number, width, height = int(match.group(1)), float(match.group(2)), float(match.group(3))
        sizes[number] = (height, width) if rotations.get(number) == 90 else (width, height)
    return int(found.group(1)), sizes


def _read_pdf_page(path: Path, number: int, size: tuple[float, float] | None, limits: Limits) -> Page:
    started = time.monotonic()
    deadline = started + limits.page_seconds
    try:
        text = _pdf_text(path, number, limits, deadline)
        if sum(char.isalnum() for char in text) >= MIN_TEXT_LAYER_CHARS:
            return page_from_text(text, number, method=METHOD_TEXT, seconds=time.monotonic() - started)
        image = _rasterise(path, number, size, limits, deadline)
        page = _ocr_page(image, number, limits, deadline, dpi=_raster_dpi(size, limits))
    except _PageTimeout:
        return _timed_out(number, limits)
    except _PageUnreadable as error:
        return Page(number, error=str(error))
    return _with_seconds(page, started)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _PageTimeout
    return left


def _pdf_text(path: Path, number: int, limits: Limits, deadline: float) -> str:
    args = ["pdftotext", "-layout", "-enc", "UTF-8", "-f", str(number), "-l", str(number), str(path), "-"]
    try:
        done = _poppler(args, seconds=_remaining(deadline), limits=limits)
    except subprocess.TimeoutExpired:
        raise _PageTimeout from None
    # A page whose text cannot be extracted may still be drawn: the raster decides.
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else ""


def _raster_dpi(size: tuple[float, float] | None, limits: Limits) -> int:
    if not size:
        return RASTER_DPI
    width, height = (max(side, 1.0) / 72 for side in size)
    fitting = min((limits.max_pixels / (width * height)) ** 0.5, limits.max_side / max(width, height))
    return int(min(RASTER_DPI, fitting))


def _rasterise(path: Path, number: int, size: tuple[float, float] | None, limits: Limits, deadline: float):
    dpi = _raster_dpi(size, limits)
    if dpi < MIN_RASTER_DPI:
        width, height = size or (0, 0)
        raise _PageUnreadable(
            _("Page %(page)d refusée : format démesuré (%(width)d × %(height)d cm).")
            % {"page": number, "width": round(width / 72 * 2.54), "height": round(height / 72 * 2.54)}
        )
    with tempfile.TemporaryDirectory(prefix="sfd-page-") as folder:
        root = Path(folder) / "page"
        args = ["pdftoppm", "-r", str(dpi), "-gray", "-singlefile", "-f", str(number), "-l", str(number)]
        try:
            done = _poppler([*args, str(path), str(root)], seconds=_remaining(deadline), limits=limits)
        except subprocess.TimeoutExpired:
            raise _PageTimeout from None
        output = root.with_suffix(".pgm")
        if done.returncode != 0 or not output.exists():
            raise _PageUnreadable(
                _("Page %(page)d illisible : le PDF ne peut pas être dessiné (trop complexe ou endommagé).")
                % {"page": number}
            )
        try:
            image = _open_checked(output.read_bytes(), number, limits)
            image.load()
        except (ScanError, OSError) as error:
            raise _PageUnreadable(str(error)) from None
    return image


# --- images ------------------------------------------------------------------------------------------------------


def _open_checked(data: bytes, number: int, limits: Limits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow's complaints about damaged metadata: the pixels are what counts.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ScanError(_("Image refusée : dimensions démesurées (bombe de décompression).")) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ScanError(_("Image illisible ou endommagée.")) from None
    _check_size(image.size, number, limits)
    return image


def _check_size(size: tuple[int, int], number: int, limits: Limits) -> None:
    width, height = size
    values = {"page": number, "width": width, "height": height}
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise ScanError(
            _("Page %(page)d refusée : %(width)d × %(height)d pixels, bien au-delà d'une page numérisée.") % values
        )
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        raise ScanError(
            _("Page %(page)d refusée : %(width)d × %(height)d pixels, ce n'est pas une page numérisée.") % values
        )


# Yielded by ``_frames`` after the last page under the cap when the file has more.
_MORE = object()


def _frames(data: bytes, kind: str, limits: Limits) -> Iterator[Image.Image | str | object]:
    """Each frame of an image file, its size checked before it is decoded: the decoded frame, or the French reason
    it cannot be read. ``_MORE`` after the cap when there is another frame (never decoded)."""
    image = _open_checked(data, 1, limits)
    number = 1
    while True:
        if number > limits.max_pages:
            yield _MORE
            return
        try:
            if number > 1:
                _check_size(image.size, number, limits)
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                # A copy of the frame: the next ``seek`` must not change the page being read.
                frame = image.copy()
        except ScanError as error:
            yield str(error)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError):
            yield _("Page %(page)d illisible : l'image est endommagée.") % {"page": number}
        else:
            yield frame
        if kind != KIND_TIFF:
            return
        try:
            image.seek(number)
        except (EOFError, OSError, ValueError, SyntaxError):
            return
        number += 1


def _read_image_page(image: Image.Image, number: int, limits: Limits) -> Page:
    started = time.monotonic()
    deadline = started + limits.page_seconds
    dpi = image.info.get("dpi")
    try:
        # A camera or some scanners say « turned » in EXIF instead of turning the pixels.
        image = ImageOps.exif_transpose(image)
        page = _ocr_page(image, number, limits, deadline, dpi=round(dpi[0]) if dpi and dpi[0] > 1 else None)
    except _PageTimeout:
        return _timed_out(number, limits)
    except _PageUnreadable as error:
        return Page(number, error=str(error))
    except (OSError, ValueError) as error:
        return Page(number, error=_("Page %(page)d illisible : %(error)s") % {"page": number, "error": error})
    return _with_seconds(page, started)


def _timed_out(number: int, limits: Limits) -> Page:
    return Page(
        number,
        error=_("Page %(page)d non lue : délai de lecture dépassé (%(seconds)d s).")
        % {"page": number, "seconds": round(limits.page_seconds)},
        seconds=limits.page_seconds,
    )


def _with_seconds(page: Page, started: float) -> Page:
    return Page(
        page.number,
        page.rows,
        width=page.width,
        height=page.height,
        method=page.method,
        rotation=page.rotation,
        seconds=round(time.monotonic() - started, 3),
        error=page.error,
    )


# --- OCR ---------------------------------------------------------------------------------------------------------


@functools.cache
def tesseract_languages() -> str:
    """The ``lang`` Tesseract reads with (« fra+eng »); ``OcrUnavailable`` without Tesseract or its French data.
    Only a success is cached: after an install, the next page finds it."""
    import pytesseract

    try:
        pytesseract.get_tesseract_version()
        available = set(pytesseract.get_languages(config=""))
    except pytesseract.TesseractNotFoundError:
        raise OcrUnavailable(_("programme tesseract introuvable")) from None
    except (pytesseract.TesseractError, OSError) as error:
        raise OcrUnavailable(str(error)) from None
    if "fra" not in available:
        raise OcrUnavailable(_("données françaises de Tesseract absentes"))
    return "+".join(language for language in LANGUAGES if language in available)


def _grey(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    elif image.mode.startswith("I;16"):
        # 16-bit grey: keep the top byte.
        image = image.convert("I").point(lambda value: value / 256)
    return image.convert("L")


def _enlarge(image: Image.Image, dpi: int | None, limits: Limits) -> tuple[Image.Image, int | None]:
    if dpi is None:
        # No resolution written in the file: assume the width of an A4 sheet.
        dpi = round(min(image.size) / 8.27)
    if dpi >= MIN_OCR_DPI or dpi <= 0:
        return image, dpi
    factor = min(RASTER_DPI / dpi, (limits.max_pixels / (image.width * image.height)) ** 0.5)
    if factor <= 1.05:
        return image, dpi
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.BICUBIC), round(dpi * factor)


def skew_angle(image: Image.Image) -> float:
    """The small rotation (degrees, counter-clockwise) that makes the text lines horizontal: the angle whose rows
    of pixels are the most contrasted (lines of ink alternating with white), searched on a thumbnail."""
    scale = SKEW_THUMBNAIL / max(image.width, 1)
    thumbnail = image.resize((SKEW_THUMBNAIL, max(1, round(image.height * scale))), Image.Resampling.BOX)
    # Ink as bright pixels on black, so the corners a rotation brings in count as paper.
    ink = ImageOps.invert(ImageOps.autocontrast(thumbnail)).point(lambda value: 255 if value > 96 else 0)
    best, best_score = 0.0, -1.0
    steps = round(MAX_SKEW / SKEW_STEP)
    for step in range(-steps, steps + 1):
        angle = step * SKEW_STEP
        turned = ink.rotate(angle, resample=Image.Resampling.NEAREST, fillcolor=0) if angle else ink
        # Resizing to one column averages each row: a sharp profile means the lines are level.
        profile = list(turned.resize((1, turned.height), Image.Resampling.BOX).tobytes())
        score = statistics.pvariance(profile) if len(profile) > 1 else 0.0
        if score > best_score + 1e-9 or (abs(score - best_score) <= 1e-9 and abs(angle) < abs(best)):
            best, best_score = angle, score
    return best


def otsu_threshold(image: Image.Image) -> int:
    """The grey level that best separates ink from paper (Otsu's method on the histogram)."""
    histogram = image.histogram()[:256]
    total = sum(histogram)
    weighted = sum(level * count for level, count in enumerate(histogram))
    below = below_weighted = 0
    best, best_variance = 128, -1.0
    for level, count in enumerate(histogram):
        below += count
        if below == 0:
            continue
        above = total - below
        if above == 0:
            break
        below_weighted += level * count
        mean_below = below_weighted / below
        mean_above = (weighted - below_weighted) / above
        variance = below * above * (mean_below - mean_above) ** 2
        if variance > best_variance:
            best, best_variance = level, variance
    return best


def binarise(image: Image.Image) -> Image.Image:
    """Ink black, paper white, at Otsu's threshold: the grey of a scanned sheet, its JPEG noise and the shading of
    table headers otherwise make Tesseract's own layout analysis drop whole lines (measured: the number line
    of a boxed header lost on two scans of the set, found once binarised)."""
    threshold = otsu_threshold(image)
    return image.point(lambda value: 255 if value > threshold else 0)


def _ocr_page(image: Image.Image, number: int, limits: Limits, deadline: float, *, dpi: int | None) -> Page:
    languages = tesseract_languages()
    image = _grey(image)
    image, dpi = _enlarge(image, dpi, limits)
    _remaining(deadline)
    turn = 0
    if image.width > image.height:
        # A landscape page is most often a portrait sheet fed sideways: ask which way up before anything else.
        turn = _orientation(image, deadline, dpi)
        if turn:
            image = image.rotate(-turn, expand=True, fillcolor=255)
    angle = skew_angle(image)
    if abs(angle) >= MIN_DESKEW:
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    # Turned clockwise by ``turn``, then counter-clockwise by ``angle``.
    angle -= turn
    image = binarise(image)
    page = _tesseract(image, number, languages, deadline, dpi=dpi, rotation=-angle % 360)
    if page.confidence >= POOR_CONFIDENCE and page.word_count >= POOR_WORDS:
        return page
    turn = _orientation(image, deadline, dpi)
    if turn:
        turned = image.rotate(-turn, expand=True, fillcolor=255)
        again = _tesseract(turned, number, languages, deadline, dpi=dpi, rotation=(turn - angle) % 360)
        if again.confidence * again.word_count > page.confidence * page.word_count:
            return again
    return page


def _config(dpi: int | None, psm: int) -> str:
    return f"--psm {psm}" + (f" --dpi {dpi}" if dpi else "")


def _tesseract(image: Image.Image, number: int, languages: str, deadline: float, *, dpi, rotation: float) -> Page:
    import pytesseract

    try:
        data = pytesseract.image_to_data(
            image,
            lang=languages,
            config=_config(dpi, PAGE_SEGMENTATION),
            output_type=pytesseract.Output.DICT,
            timeout=_remaining(deadline),
        )
    except RuntimeError as error:
        if "timeout" in str(error).lower():
            raise _PageTimeout from None
        raise _PageUnreadable(
            _("Page %(page)d illisible par l'OCR : %(error)s") % {"page": number, "error": error}
        ) from None
    except pytesseract.TesseractNotFoundError:
        raise OcrUnavailable(_("programme tesseract introuvable")) from None
    except pytesseract.TesseractError as error:
        raise _PageUnreadable(
            _("Page %(page)d illisible par l'OCR : %(error)s") % {"page": number, "error": error.message}
        ) from None
    words = []
    for index, text in enumerate(data["text"]):
        confidence = float(data["conf"][index])
        if not text.strip() or confidence < 0:
            continue
        left, top = int(data["left"][index]), int(data["top"][index])
        box = Box(left, top, left + int(data["width"][index]), top + int(data["height"][index]))
        line = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
        words.append((line, Word(text.strip(), box, round(confidence / 100, 3))))
    return page_from_words(number, words, width=image.width, height=image.height, rotation=round(rotation, 2))


_ROTATE = re.compile(r"Rotate:\s+(\d+)")
_ORIENTATION_CONFIDENCE = re.compile(r"Orientation confidence:\s+([\d.]+)")


def _orientation(image: Image.Image, deadline: float, dpi: int | None) -> int:
    """Degrees to turn the page clockwise so that its text stands upright (0 when unsure)."""
    import pytesseract

    try:
        osd = pytesseract.image_to_osd(image, config=_config(dpi, 0), timeout=_remaining(deadline))
    except RuntimeError as error:
        if "timeout" in str(error).lower():
            raise _PageTimeout from None
        return 0
    except pytesseract.TesseractError:
        # Too little text to tell (or no osd data): the page stays as it is.
        return 0
    rotate, confidence = _ROTATE.search(osd), _ORIENTATION_CONFIDENCE.search(osd)
    if not rotate or not confidence or float(confidence.group(1)) < OSD_MIN_CONFIDENCE:
        return 0
    return int(rotate.group(1)) % 360
