# lockstock worker / gateway image.
#   docker build -t lockstock .
#   docker run --rm -e KAFKA_BOOTSTRAP_SERVERS=host:9092 lockstock            # worker
#   docker run --rm -p 8080:8080 ... lockstock lockstock gateway --port 8080   # gateway
# Every dependency ships a manylinux wheel, so no compiler is needed in the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Install from a throwaway copy of the source; only site-packages is kept.
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . \
    && cd / && rm -rf /src

# Non-root user. /data is created here, owned by that user, so a named volume mounted
# there starts out writable (Docker copies the image directory's ownership into it).
RUN groupadd --system --gid 10001 lockstock \
    && useradd --system --uid 10001 --gid lockstock --home-dir /app --shell /usr/sbin/nologin lockstock \
    && mkdir -p /app /data \
    && chown lockstock:lockstock /app /data

# In a container the web views must listen on every interface, not 127.0.0.1.
ENV LOCKSTOCK_DATA_DIR=/data \
    LOCKSTOCK_WEB_HOST=0.0.0.0 \
    LOCKSTOCK_WEB_PORT=6066

WORKDIR /app
USER 10001:10001
EXPOSE 6066 8080

CMD ["lockstock", "worker"]
