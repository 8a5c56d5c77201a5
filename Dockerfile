# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GRADLAB_ENV=production \
    GRADLAB_VAR_DIR=/var/lib/gradlab

# bubblewrap + libseccomp2: the grader's sandbox; nodejs/npm: the asset build only.
RUN apt-get update \
 && apt-get install -y --no-install-recommends bubblewrap libseccomp2 nodejs npm curl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY package.json package-lock.json ./
COPY scripts/build-assets.sh scripts/
COPY static/ static/
RUN bash scripts/build-assets.sh && rm -rf node_modules

COPY . .
# collectstatic needs a key to import settings; it is not the runtime key.
RUN SECRET_KEY=build-only-key-not-used-at-runtime-0123456789abcdefghijklmnop \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 --home /var/lib/gradlab gradlab \
 && mkdir -p /var/lib/gradlab && chown gradlab /var/lib/gradlab
USER gradlab

EXPOSE 8000
CMD ["gunicorn", "gradlab.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
