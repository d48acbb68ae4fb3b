"""Thin Celery tasks: load by id, call the service."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .imports import intake_scan_run
from .intake import intake_companies, intake_company
from .paper import paper_read, paper_reap


@shared_task
def intake_company_task(company_id: int) -> dict:
    """Read the new files of one company's scan folder (the « Importer » button, and the schedule)."""
    company = intake_companies().filter(pk=company_id).first()
    if company is None:
        return {"company_id": company_id, "error": "missing"}
    return intake_company(company=company).summary()


@shared_task
def intake_all_companies() -> int:
    """The periodic intake: one task per company with a scan directory, so that workers share them."""
    company_ids = list(intake_companies().values_list("pk", flat=True))
    for company_id in company_ids:
        intake_company_task.delay(company_id)
    return len(company_ids)


@shared_task
def intake_scan_task(scan_id: int) -> str:
    """« Importer » from the « Imports » screen: one company's folder, its progress written as it goes."""
    scan = intake_scan_run(scan_id=scan_id)
    return scan.status if scan else "missing"


@shared_task(soft_time_limit=settings.PAPER_READ_SECONDS - 30, time_limit=settings.PAPER_READ_SECONDS)
def paper_read_task(invoice_id: int) -> str:
    """Read a paper invoice (OCR) and pre-fill it: never in a web request."""
    return paper_read(invoice_id=invoice_id)


@shared_task
def paper_reap_task() -> int:
    """The readings lost with their worker, sent again (a beat entry)."""
    return paper_reap()
