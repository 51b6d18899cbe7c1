FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chat
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chat ./chat
RUN pip install --no-cache-dir .
USER chat
EXPOSE 6667 6697 8080
# The slim image has no curl: ask /healthz with Python's own HTTP client, on the port and
# scheme the CHAT_* environment gives (HTTPS on the HTTP port when only CHAT_TLS_CERT is set).
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, ssl, sys, urllib.request as u; e = os.environ.get; tls = bool(e('CHAT_TLS_CERT')) and not e('CHAT_HTTPS_PORT'); url = ('https' if tls else 'http') + '://127.0.0.1:' + e('CHAT_HTTP_PORT', '8080') + '/healthz'; sys.exit(0 if u.urlopen(url, timeout=2, context=ssl._create_unverified_context()).status == 200 else 1)"]
ENTRYPOINT ["chat"]
CMD ["serve", "--host", "0.0.0.0"]
