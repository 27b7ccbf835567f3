# syntax=docker/dockerfile:1
# The reconciler in a container:
#   docker build -t reconciler .                          # the runtime image (the last stage)
#   docker run --rm -v "$PWD/specs:/work/specs:ro" -e AWS_REGION -e AWS_ACCESS_KEY_ID \
#     -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN reconciler plan specs
#   docker build --target demo -t reconciler-demo .       # the same, plus the demo's emulator
#   docker run --rm reconciler-demo                       # runs `reconciler demo`
#
# Reproducible: the base image is pinned by digest, the dependencies are the GitHub Action's
# hash-pinned lock (action/requirements.lock; the demo's: docker/demo.lock), installed from
# wheels only, before the code is copied, so a code change rebuilds only the reconciler's own
# wheel. Small: the runtime image holds one virtual environment with the locked dependencies
# and the reconciler, without pip, the build backend or the demo's moto and Flask.
# tests/test_packaging.py checks these rules without Docker, runs the same install steps in
# a fresh virtual environment, and runs hadolint over this file.

# python:3.12-slim (Python 3.12.13 on Debian 13 "trixie"): the digest of its multi-platform
# index as of 2026-08-07. Dependabot's docker updates (.github/dependabot.yml) propose the
# tag's new digest as it moves; by hand, put the "Digest:" line of
# `docker buildx imagetools inspect python:3.12-slim` here.
FROM python:3.12-slim@sha256:229a2c5bfa27522db7815ea81f9bed70af17ccb9de9fc7ad142b1877b5830d36 AS python
# pip still compiles what it installs: the reconciler starts from .pyc files that its user
# could not write.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

# The locked dependencies in /opt/reconciler, a virtual environment without pip: the base
# image's pip installs into it (PIP_PYTHON is pip's --python). --only-binary: the slim image
# has no compiler, and a wheel's hash is the whole check (nothing is built from source).
FROM python AS deps
ENV PIP_PYTHON=/opt/reconciler/bin/python
RUN python -m venv --without-pip /opt/reconciler
COPY action/requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.lock

# The reconciler's wheel, built by the lock's setuptools (no build isolation: nothing
# unhashed is fetched), as the action installs it.
FROM deps AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# The runtime's environment: the wheel alone on the locked dependencies, then without the
# build backend, which nothing imports at run time.
FROM deps AS venv
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps --no-index /wheels/*.whl \
 && pip uninstall --yes setuptools \
 && pip check

# The demo's environment: the same, plus moto, Flask and the rest of the `demo` extra from
# their own hash-pinned lock (its pins of the shared packages are action/requirements.lock's).
FROM deps AS demo-venv
COPY docker/demo.lock /tmp/demo.lock
RUN pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/demo.lock
COPY --from=wheel /wheels /wheels
RUN pip install --no-deps --no-index /wheels/*.whl \
 && pip uninstall --yes setuptools \
 && pip check

# What both images share: a non-root user and a working directory it owns (so that
# `plan --out plan.json` can write there), made explicitly: WORKDIR alone leaves a directory
# it creates to root under the classic builder (BuildKit gives it to USER).
FROM python AS user
RUN useradd --uid 10001 --user-group --create-home --no-log-init --shell /usr/sbin/nologin reconciler \
 && install --directory --owner=10001 --group=10001 --mode=0755 /work
ENV PATH=/opt/reconciler/bin:$PATH
WORKDIR /work
USER 10001:10001
ENTRYPOINT ["reconciler"]
CMD ["--help"]

# `docker build --target demo`: the runtime image plus the demo's packages; runs the demo.
FROM user AS demo
COPY --from=demo-venv /opt/reconciler /opt/reconciler
CMD ["demo"]

# The default target, last: the runtime image.
FROM user AS runtime
COPY --from=venv /opt/reconciler /opt/reconciler
