# syntax=docker/dockerfile:1
# One image for the workers, beat, Flower, the orchestrator's command line and the simulator.
#   docker build -t asicfleet:0.1.0 .
# The base is pinned by digest (python:3.11-slim-bookworm, multi-arch); bump it deliberately, e.g. with
# `docker buildx imagetools inspect python:3.11-slim-bookworm`, and rebuild.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/asicfleet \
    XDG_DATA_HOME=/tmp \
    ASICFLEET_LOG_FORMAT=json

# a numeric user, so that Kubernetes' runAsNonRoot can check it
# /data: Flower's history and beat's schedule where a volume is mounted (a new volume takes this owner)
RUN groupadd --gid 10001 asicfleet && useradd --uid 10001 --gid 10001 --create-home asicfleet \
    && mkdir /data && chown 10001:10001 /data

WORKDIR /app
# the locked dependencies first: this layer is rebuilt only when requirements.lock changes
COPY requirements.lock ./
RUN pip install --no-deps -r requirements.lock

COPY pyproject.toml README.md ./
COPY asicfleet ./asicfleet
COPY fleet ./fleet
COPY orchestrator ./orchestrator
COPY workers ./workers
# the project alone, on the locked dependencies (no resolver run, nothing newer pulled in)
RUN pip install --no-deps . && python -c "import asicfleet, fleet, orchestrator, workers"

USER 10001:10001
# asks what the container runs: a worker its `celery inspect ping`, Flower its /healthcheck
HEALTHCHECK --interval=60s --timeout=45s --start-period=60s --retries=5 \
    CMD ["python", "-m", "orchestrator.healthcheck"]
ENTRYPOINT ["asicfleet"]
CMD ["--help"]
