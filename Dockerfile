FROM python:3.11-slim
RUN useradd --create-home --uid 10001 chat
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chat ./chat
RUN pip install --no-cache-dir .
USER chat
EXPOSE 6667 8080
ENTRYPOINT ["chat"]
CMD ["serve", "--host", "0.0.0.0"]
