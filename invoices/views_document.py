"""The stored document of an invoice from the scan folder, and its pages as images beside the form.

Rule: the document is the one the intake kept (``Invoice.source_file``, opened under ``SCAN_ROOT`` without following
a link); a page is rendered on demand into a PNG (``pdftoppm`` for a PDF, in a child process with a memory cap and
a deadline; Pillow for an image, its size checked before it is decoded) and cached under the var dir by the
document's hash. The cache prunes itself: a page not shown for ``PAGE_CACHE_DAYS`` is deleted (a hit renews it), by
the request that draws a new page, at most once an hour. Both views check the right to see invoices and the user's
right on the invoice's company: another company's invoice is a 404, as everywhere. No OCR here: rendering is not
reading.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_GET

from . import paper, scan, selectors
from .imports import IntakeFileUnavailable

VIEW = "invoices.view_invoices"
PAGE_DPI = 110
MAX_WIDTH = 1400
RENDER_SECONDS = 30
PAGE_CACHE_DAYS = 30
PRUNE_EVERY_SECONDS = 3600
PRUNE_MARK = ".pruned"
CONTENT_TYPES = {
    scan.KIND_PDF: "application/pdf",
    scan.KIND_TIFF: "image/tiff",
    scan.KIND_JPEG: "image/jpeg",
    scan.KIND_PNG: "image/png",
}


def _cache_dir() -> Path:
    folder = Path(settings.VAR_DIR) / "scan-pages"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prune_page_cache(folder: Path, *, now: float, older_than_days: float = PAGE_CACHE_DAYS) -> int:
    """Delete the pages (and the partial renders a killed thread left) not used for ``older_than_days`` before
    ``now``; their count. ``now`` is the file system's time (a file's ``st_mtime``), the clock the pages' dates
    come from, not Python's.

    The cache is rebuilt on demand from the stored document, so nothing is lost: a page asked again is drawn again.
    """
    cutoff = now - older_than_days * 86400
    removed = 0
    for entry in os.scandir(folder):
        if entry.name == PRUNE_MARK or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:  # another thread pruned or renamed it first
            continue
    return removed


def _prune_now_and_then(folder: Path, page: Path) -> None:
    """Prune at most once every ``PRUNE_EVERY_SECONDS``, whichever process gets there first (the mark's date),
    measured on the file system's clock: the page just written says what time it is there."""
    now = page.stat().st_mtime
    mark = folder / PRUNE_MARK
    try:
        if now - mark.stat().st_mtime < PRUNE_EVERY_SECONDS:
            return
    except FileNotFoundError:
        pass
    mark.touch()
    os.utime(mark, (now, now))
    prune_page_cache(folder, now=now)


def _document(request, pk: int):
    invoice = selectors.invoice_for_user(request.user, pk)
    if not invoice.source_file or not invoice.source_format.startswith("scan-"):
        raise Http404
    try:
        data = paper.document_bytes(invoice)
    except IntakeFileUnavailable:
        raise Http404 from None
    return invoice, data


def page_count(data: bytes, limits: scan.Limits | None = None) -> int:
    """The pages shown (up to the page cap)."""
    limits = limits or scan.Limits()
    kind = scan.document_kind(data)
    if kind == scan.KIND_PDF:
        with tempfile.TemporaryDirectory(prefix="sfd-view-") as folder:
            path = Path(folder) / "document.pdf"
            path.write_bytes(data)
            count, _sizes = scan._pdf_pages(path, limits)
        return min(count, limits.max_pages)
    count = 0
    image = scan._open_checked(data, 1, limits)
    while count < limits.max_pages:
        count += 1
        try:
            image.seek(count)
        except (EOFError, OSError, ValueError):
            break
    return count


def render_page(data: bytes, number: int) -> bytes:
    """Page ``number`` as a PNG at most ``MAX_WIDTH`` pixels wide; ``ScanError`` when it cannot be drawn."""
    limits = scan.Limits()
    kind = scan.document_kind(data)
    if kind == scan.KIND_PDF:
        with tempfile.TemporaryDirectory(prefix="sfd-view-") as folder:
            path, root = Path(folder) / "document.pdf", Path(folder) / "page"
            path.write_bytes(data)
            args = ["pdftoppm", "-r", str(PAGE_DPI), "-png", "-singlefile", "-f", str(number), "-l", str(number)]
            # prlimit rather than a preexec_fn: the web server runs threads.
            memory = f"--as={limits.child_memory_bytes}"
            try:
                done = subprocess.run(  # noqa: S603 — fixed programs, our own arguments
                    ["prlimit", memory, *args, str(path), str(root)],  # noqa: S607
                    capture_output=True,
                    timeout=RENDER_SECONDS,
                    check=False,
                )
            except (FileNotFoundError, subprocess.TimeoutExpired):
                raise scan.ScanError("page non dessinée") from None
            output = root.with_suffix(".png")
            if done.returncode != 0 or not output.exists():
                raise scan.ScanError("page non dessinée")
            image = scan._open_checked(output.read_bytes(), number, limits)
    else:
        image = scan._open_checked(data, 1, limits)
        try:
            image.seek(number - 1)
        except (EOFError, OSError, ValueError):
            raise scan.ScanError("page absente") from None
        scan._check_size(image.size, number, limits)
    image = image.convert("RGB") if image.mode not in ("L", "RGB") else image
    if image.width > MAX_WIDTH:
        image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def invoice_document_page(request, pk: int, page: int):
    """Page ``page`` of the invoice's document, as a PNG (rendered once, then from the cache)."""
    invoice = selectors.invoice_for_user(request.user, pk)
    if not invoice.source_hash or not invoice.source_format.startswith("scan-") or not 1 <= page <= 999:
        raise Http404
    folder = _cache_dir()
    cached = folder / f"{invoice.source_hash}-{page}.png"
    try:
        os.utime(cached)  # a hit: the page stays in the cache for another PAGE_CACHE_DAYS
    except FileNotFoundError:
        _invoice, data = _document(request, pk)
        try:
            # The count the reading stored, when there is one: pdfinfo runs only for a document not read yet.
            if page > ((invoice.scan or {}).get("pages") or page_count(data)):
                raise Http404
            png = render_page(data, page)
        except scan.ScanError:
            raise Http404 from None
        # A file of its own per render (two threads may draw the same page), then renamed whole: never half a PNG.
        handle, partial = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(png)
        os.replace(partial, cached)
        _prune_now_and_then(folder, cached)
    else:
        png = cached.read_bytes()
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@login_required
@permission_required(VIEW, raise_exception=True)
def invoice_document(request, pk: int):
    """The document as the scanner left it."""
    invoice, data = _document(request, pk)
    kind = invoice.source_format.removeprefix("scan-")
    name = Path(invoice.source_file).name
    return FileResponse(
        io.BytesIO(data), filename=name, content_type=CONTENT_TYPES.get(kind, "application/octet-stream")
    )
