# One image for every app service of docker-compose.yml: web (gunicorn, the default command), migrate,
# worker, beat and the Sage FRP 1000 stub of the demo.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # The code runs from /app, where its templates, static sources and locale are (pip would not copy them).
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=config.production \
    STATIC_ROOT=/app/staticfiles \
    SFD_VAR_DIR=/data/var \
    SCAN_ROOT=/data/scan \
    WEB_CONCURRENCY=3

# Paper invoices: Tesseract with its French and English data, and poppler to read and rasterise PDFs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng poppler-utils \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 sfd \
    && useradd --system --uid 10001 --gid sfd --home-dir /app --shell /usr/sbin/nologin sfd

WORKDIR /app

# The dependencies from pyproject.toml alone, before the code is copied (no package is found yet): this
# layer is rebuilt when the dependencies change, not at every change of the code.
COPY pyproject.toml /app/
RUN pip install . \
    && rm -rf /app/build /app/*.egg-info

COPY . /app

# Static files are hashed and compressed once, at build. These variables exist only for this step:
# production settings refuse to load without them, and collectstatic touches neither database nor broker.
RUN SECRET_KEY=collectstatic-only-never-a-runtime-secret-0123456789abcdef \
    ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/collectstatic.sqlite3 \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    SFD_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput \
    && rm -f /tmp/collectstatic.sqlite3

# /data is where the volumes go (scan folders, beat's schedule file, the stub's store). Owned by the app
# user in the image, so that a fresh named volume mounted there is too; the code stays read-only to it.
RUN mkdir -p /data/var /data/scan \
    && chown -R sfd:sfd /data

USER sfd
EXPOSE 8000

# Probes talk plain HTTP to gunicorn: /healthz is exempt from the HTTPS redirect, and the Host header must
# be one of ALLOWED_HOSTS. The services that are not web replace this check in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; host = os.environ['ALLOWED_HOSTS'].split(',')[0].strip().lstrip('.').replace('*', 'localhost'); urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:8000/healthz', headers={'Host': host}), timeout=8)"]

# gunicorn reads its number of worker processes from WEB_CONCURRENCY.
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--threads", "4", "--timeout", "60"]
