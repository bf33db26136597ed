# The hdi application image: `docker compose run --rm hdi ingest --recipe recipes/ohlcv_1d.yaml`
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hdi ./hdi
RUN pip install . && useradd --create-home hdi
COPY recipes ./recipes
USER hdi
ENTRYPOINT ["hdi"]
CMD ["--help"]
