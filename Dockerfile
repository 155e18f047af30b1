# The ledger's image: the `ledger` command as its entrypoint, run as an unprivileged
# user, with the data directory (SQLite file, keys) on a volume at /var/lib/ledger.
#
#   docker build -t refund-ledger .          (or: podman build -t refund-ledger .)
#   docker compose -f deploy/compose.yaml up  (PostgreSQL, Redis, API, sequencer, witness)
#
# BASE is any Debian-based image with Python 3.11 and venv (the default is the official
# slim one; docs/operations.md builds it from a local Debian root where registries are
# out of reach).
ARG BASE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/ledger/bin:$PATH \
    LEDGER_DATA_DIR=/var/lib/ledger \
    LEDGER_HOST=0.0.0.0

RUN python3 -m venv /opt/ledger \
    && useradd --system --uid 10001 --home-dir /var/lib/ledger --shell /usr/sbin/nologin ledger \
    && mkdir -p /var/lib/ledger /var/lib/ledger-witness \
    && chown ledger:ledger /var/lib/ledger /var/lib/ledger-witness

# The SDK first (the server depends on it), then the server; the catalogues are
# compiled in the image so that no process compiles them at start.
COPY client /src/client
COPY pyproject.toml README.md alembic.ini babel.cfg /src/
COPY migrations /src/migrations
COPY ledger /src/ledger
COPY api /src/api
RUN pip install /src/client /src \
    && python -m ledger.i18n.catalogues compile \
    && rm -rf /src

USER ledger
WORKDIR /var/lib/ledger
VOLUME ["/var/lib/ledger"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2); sys.exit(0)"]
ENTRYPOINT ["ledger"]
CMD ["serve"]
