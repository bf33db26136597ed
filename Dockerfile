# The hdi application image: `docker compose run --rm hdi ingest --recipe recipes/ohlcv_1d.yaml`
#
# hdi runs as the unprivileged user `hdi` (uid 1000). Everything it writes lives under /data
# (HDI_DATA_DIR): the embedded store /data/hdi.duckdb (unless HDI_STORE names another store), the raw
# DBN cache /data/raw, quarantined rows /data/quarantine and logs /data/logs. /data is created here,
# owned by `hdi`, before `USER hdi`: a fresh named volume mounted at /data copies that ownership, so
# the first write does not fail (a host folder bind-mounted there must be writable by uid 1000).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HDI_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hdi ./hdi
RUN pip install . \
    && useradd --create-home --uid 1000 hdi \
    && mkdir -p /data \
    && chown hdi:hdi /data
COPY recipes ./recipes
USER hdi
ENTRYPOINT ["hdi"]
CMD ["--help"]
