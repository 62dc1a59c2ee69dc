# StarTrack: the dashboard (and every `startrack` command) in a container, as a non-root user.
#   docker build -t startrack .
#   docker run --rm -p 8050:8050 -v startrack-data:/data startrack            # serve
#   docker run --rm -v startrack-data:/data startrack startrack demo --until score
#   docker run -d -v startrack-data:/data startrack startrack score --every 6h  # scheduled scoring
FROM python:3.11-slim

# torch==2.13.0 from the CPU wheel index keeps the image small (PyPI's default build carries CUDA).
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    STARTRACK_WAREHOUSE=/data/warehouse

RUN useradd --create-home --uid 10001 startrack \
    && mkdir -p /data && chown startrack:startrack /data

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY startrack ./startrack
COPY etl ./etl
COPY simulator ./simulator
COPY warehouse ./warehouse
COPY ml ./ml
COPY dashboard ./dashboard
RUN pip install --extra-index-url "$TORCH_INDEX" -c constraints.txt ".[serve]"

USER startrack
WORKDIR /data
VOLUME /data
EXPOSE 8050
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/', timeout=5)"
CMD ["gunicorn", "--bind", "0.0.0.0:8050", "--workers", "2", "--timeout", "120", \
     "startrack.dashboard.wsgi:server"]
