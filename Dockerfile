# replywatch: a slim Debian image with the locked dependencies, running as a non-root user.
# Build: `docker build -t replywatch .` (or `podman build`); run it with a config mounted at
# /etc/replywatch/replywatch.yaml that listens on all interfaces (http.listen: "0.0.0.0:9687"):
#   docker run -v ./replywatch.yaml:/etc/replywatch/replywatch.yaml:ro -v replywatch:/var/lib/replywatch \
#     -e SUPPORT_IMAP_PASSWORD -p 9687:9687 replywatch
# Debian's own Python 3.11, so the image needs nothing beyond the Debian archive and PyPI.
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-intercepting proxy, mount its CA bundle and name it (build-time only, not in the image):
#   --volume /etc/ssl/certs/ca-certificates.crt:/run/host-ca.crt:ro \
#   --build-arg SSL_CERT_FILE=/run/host-ca.crt --build-arg PIP_CERT=/run/host-ca.crt
ARG SSL_CERT_FILE
ARG PIP_CERT
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --no-cache-dir uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/replywatch \
    UV_PYTHON=/usr/bin/python3 UV_PYTHON_DOWNLOADS=never
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --extra postgresql
COPY monitor ./monitor
RUN /opt/uv/bin/uv sync --frozen --no-dev --extra postgresql --no-editable

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/replywatch --create-home --uid 10001 replywatch
COPY --from=build /opt/replywatch /opt/replywatch
COPY config/examples /etc/replywatch/examples
ENV PATH=/opt/replywatch/bin:$PATH PYTHONUNBUFFERED=1 REPLYWATCH_CONFIG=/etc/replywatch/replywatch.yaml
USER replywatch
WORKDIR /var/lib/replywatch
EXPOSE 9687
# Checks /-/healthy on the port the config's http.listen sets (REPLYWATCH_CONFIG), not a fixed one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["python", "-m", "monitor.healthcheck"]
ENTRYPOINT ["replywatch"]
CMD ["run", "-c", "/etc/replywatch/replywatch.yaml"]
