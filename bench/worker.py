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
    from synchro.runs import run_company_execute

    with counting() as queries:
        line = run_company_execute(run_company_id=run_company_id)
    report = {"peak_rss_mb": peak_rss_mb(), "queries": queries(), "integrated": line.integrated, "status": line.status}
    print(json.dumps(report), flush=True)


def peak_rss_mb() -> float:
    """This process's peak resident set. Linux's ``getrusage`` starts a child at its parent's peak (the high-water
    mark survives ``fork`` and ``exec``): measured 311 MB for a child of 10 MB whose parent held 300 MB. The peak of
    the process's own memory is ``VmHWM``."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes, where /proc is missing


if __name__ == "__main__":
    main(int(sys.argv[1]))
