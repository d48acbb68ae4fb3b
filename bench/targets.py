"""The application's entry points the benchmarks drive, in one place: when the export code moves (the split of
``synchro/services.py`` into modules), this file alone is re-pointed."""

from __future__ import annotations

from invoices.intake import intake_company
from synchro.runs import run_company_execute, run_start

# The Celery task that exports one company of a run, by name: the benchmarks send it to real workers from a
# Celery app of their own (on Redis), never through the application's broker settings.
RUN_COMPANY_TASK = "synchro.tasks.run_company_task"

__all__ = ["RUN_COMPANY_TASK", "intake_company", "run_company_execute", "run_start"]
