# syntax=docker/dockerfile:1
# The reconciler in a container: `docker build -t reconciler .`, then for example
#   docker run --rm reconciler demo
#   docker run --rm -v "$PWD/specs:/work/specs:ro" -e AWS_REGION -e AWS_ACCESS_KEY_ID \
#     -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN reconciler plan specs
# tests/test_packaging.py runs the same build and install steps without Docker.

FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
# The sdist, then the wheel built from it: what a release publishes.
RUN python -m pip install build \
 && python -m build --outdir /dist .
# The wheel with its dependencies (and the demo's), in a virtual environment that the
# final stage copies whole.
RUN python -m venv /opt/reconciler \
 && /opt/reconciler/bin/pip install "$(ls /dist/*.whl)[demo]"

FROM python:3.12-slim
COPY --from=build /opt/reconciler /opt/reconciler
RUN useradd --create-home --uid 10001 --user-group reconciler
ENV PATH=/opt/reconciler/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /work
ENTRYPOINT ["reconciler"]
CMD ["--help"]
