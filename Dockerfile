FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chat
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chat ./chat
RUN pip install --no-cache-dir .
USER chat
EXPOSE 6667 6697 8080
# The slim image has no curl: ask /healthz with Python's own HTTP client.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["chat"]
CMD ["serve", "--host", "0.0.0.0"]
