# dcs-bot itself in a container (HTTP mode on port 3000; docker-compose.example.yml shows a whole setup).
#
#   docker build -t dcs-bot .
#   docker build -t dcs-bot --build-arg BASE=myregistry.example.com/python:3.11-slim-bookworm \
#       --build-arg PIP_INDEX_URL=https://pypi.example.com/simple/ .     # behind a corporate network
#
# BASE: any image with Python >= 3.11 (`python3` with the venv module) and useradd. A private CA that pip must
# trust goes in deploy/build-ca/ca.pem (build only: it is removed before the layer is written). Do not put
# credentials in PIP_INDEX_URL: build arguments are visible in `docker history`.
# The Docker engine the bot builds with is DOCKER_HOST: a mounted socket (unix:///var/run/docker.sock, the
# container user must be in the socket's group: `group_add`) or a remote engine (tcp://…, ssh://…).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG PIP_INDEX_URL=https://pypi.org/simple/
# COMPILE=0 skips compiling .pyc files at install (a faster build, a slower first start)
ARG COMPILE=1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONUNBUFFERED=1

COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY handlers /src/handlers
COPY jobs /src/jobs
COPY deploy/build-ca/ /tmp/build-ca/
RUN set -eu; \
    if [ -s /tmp/build-ca/ca.pem ]; then export PIP_CERT=/tmp/build-ca/ca.pem; fi; \
    if [ "$COMPILE" = 0 ]; then set -- --no-compile; else set --; fi; \
    python3 -m venv /opt/dcs-bot; \
    /opt/dcs-bot/bin/python -m pip install "$@" --index-url "$PIP_INDEX_URL" /src; \
    rm -rf /src /tmp/build-ca; \
    useradd --system --uid 10001 --user-group --home-dir /var/lib/dcs-bot --create-home \
        --shell /usr/sbin/nologin dcs

ENV PATH=/opt/dcs-bot/bin:$PATH \
    DCS_DB=/var/lib/dcs-bot/dcs.db \
    PORT=3000
USER dcs
WORKDIR /var/lib/dcs-bot
VOLUME ["/var/lib/dcs-bot"]
EXPOSE 3000
# 200 while the database answers (the JSON says whether the Docker engine does too); 503 when it does not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/opt/dcs-bot/bin/python", "-c", "import os, sys, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT', '3000')}/healthz\", timeout=4); sys.exit(0)"]
ENTRYPOINT ["/bin/sh", "-c", "exec dcs-bot --http --port \"$PORT\" \"$@\"", "dcs-bot"]
