# One image for workers, beat, Flower, the orchestrator CLI and the simulator.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 asicfleet
WORKDIR /app
COPY pyproject.toml README.md ./
COPY asicfleet ./asicfleet
COPY fleet ./fleet
COPY orchestrator ./orchestrator
COPY workers ./workers
RUN pip install --no-cache-dir ".[fast]"
USER asicfleet
ENTRYPOINT ["asicfleet"]
CMD ["--help"]
