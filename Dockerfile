FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY . .
RUN pip install --no-cache-dir . && mkdir -p var \
 && DEBUG=1 python manage.py collectstatic --noinput -v0
EXPOSE 8000
# gunicorn.conf.py: one process of 16 threads on 0.0.0.0:8000 (WEB_CONCURRENCY, WEB_THREADS).
CMD ["gunicorn", "config.wsgi:application"]
