# The aios worker image: the project installed from pyproject.toml with the pinned constraints.
# Flows and skills arrive at run time through the deployment's pull step (git_clone), so one image
# serves every version of the skills. Build: docker build -t aios-worker .
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/aios
COPY pyproject.toml constraints.txt README.md ./
COPY aios ./aios
COPY flows ./flows
COPY deployments ./deployments
RUN pip install --no-cache-dir --constraint constraints.txt .

# Each flow run clones the project into its own working directory (no AIOS_HOME: the clone is the home).
WORKDIR /work
ENV PYTHONUNBUFFERED=1 AIOS_FLEET=multi
