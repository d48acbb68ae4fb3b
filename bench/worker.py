"""``python -m bench.worker <run line id>``: one company of a run exported in this process, as a Celery worker
would (``run_company_execute``); prints its peak RSS as JSON. The environment is the benchmark's."""

from __future__ import annotations

import json
import resource
import sys


def main(run_company_id: int) -> None:
    import django

    django.setup()
    from bench.support import counting
    from synchro.services import run_company_execute

    with counting() as queries:
        line = run_company_execute(run_company_id=run_company_id)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    report = {"peak_rss_mb": peak_kb / 1024, "queries": queries(), "integrated": line.integrated, "status": line.status}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
