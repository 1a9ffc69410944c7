# replywatch: a slim image with the locked dependencies, running as a non-root user.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/replywatch
RUN pip install --no-cache-dir uv
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project --extra postgresql
COPY monitor ./monitor
RUN uv sync --frozen --no-dev --extra postgresql --no-editable

FROM python:3.11-slim
RUN useradd --system --home-dir /var/lib/replywatch --create-home --uid 10001 replywatch
COPY --from=build /opt/replywatch /opt/replywatch
COPY config/examples /etc/replywatch/examples
ENV PATH=/opt/replywatch/bin:$PATH PYTHONUNBUFFERED=1
USER replywatch
WORKDIR /var/lib/replywatch
EXPOSE 9687
# Listen on all interfaces inside the container: set http.listen: "0.0.0.0:9687" in the config.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
  CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9687/-/healthy', timeout=4); sys.exit(0)"]
ENTRYPOINT ["replywatch"]
CMD ["run", "-c", "/etc/replywatch/replywatch.yaml"]
