# syntax=docker/dockerfile:1
# lbs: the API under gunicorn, as a non-root user, running the same commands as
# `bash scripts/run` (migrate, `lbs demo`: seed the demo city once, serve; beside it every
# minute `lbs insights refresh` and, with payments on, `lbs payments expire`). The image has no ../shared/data, so its demo
# city is the synthetic one. It has no localstripe either (a test tool, GPL-3.0): without
# Stripe keys it takes no payments, and every deal is claimed free and paid at the counter.
#
#   docker build -t lbs .
#   docker run --rm -p 8000:8000 -v lbs-data:/data lbs
#   curl -s 'http://127.0.0.1:8000/v1/nearby?lat=60.17&lon=24.94'
#
# Configuration is the LBS_* environment (docs/operations.md):
#   LBS_DATABASE_URL           default here sqlite:////data/lbs.sqlite3 (the /data volume);
#                              postgresql+psycopg://user:pass@host:5432/lbs for PostgreSQL+PostGIS
#   LBS_WORKERS                gunicorn worker processes (default 2)
#   LBS_OPERATOR_TOKEN_SHA256  sha256 of the operator token (`lbs operator-token`); empty: operator API off
#   LBS_INDEX_REFRESH_S        how often a worker polls for merchant writes, seconds (default 1)
#   LBS_H3_RESOLUTIONS         H3 resolutions of the nearby index, coarse to fine (default 7,9,11)
#   LBS_SECRET_KEY             derives voucher codes and signs their QR codes; keep it stable and secret.
#                              Unset: read from LBS_SECRET_KEY_FILE, created on first start (/data/lbs-secret.key)
#   LBS_RATE_LIMIT_CLAIM, _REDEEM, _NEW_USERS   default 30/minute per user token / merchant key / address
#   LBS_RATE_LIMIT_STORAGE     database (default: counters in the service's database, shared by every worker),
#                              redis://host:6379 (shared, no database writes) or memory:// (per worker)
#   LBS_MODEL_DIR              where `lbs train` writes ranking models and workers read them (/data/lbs-models);
#                              train with: docker run ... lbs lbs train   (workers reload within LBS_MODEL_RELOAD_S, 10 s)
#   LBS_CORS_ORIGINS           origins allowed to call the public read endpoints (default *)
#   LBS_MAP_TILES_URL          base map tiles of /map (default none: a plain background)
#   LBS_LOG_LEVEL              default INFO
# Payments (docs/payments.md; off unless LBS_PAYMENT_PROVIDER is set):
#   LBS_PAYMENT_PROVIDER       stripe: prepaid deals paid online through Stripe; empty (default): none
#   LBS_STRIPE_SECRET_KEY      the account's secret key; sk_test_… for the demo (lbs demo then makes
#                              prepaid deals, and POST /v1/me/orders/{id}/test-payment works)
#   LBS_STRIPE_WEBHOOK_SECRET  the signing secret (whsec_…) of the endpoint registered in Stripe's
#                              dashboard: https://<host>/v1/payments/stripe/webhook
#   LBS_PAYMENT_HOLD_S, LBS_COMMISSION_BPS   default 600 s and 1000 (10 %)
# Keys are secrets: pass them with --env-file (a file only you can read), never on the command line:
#   docker run --rm -p 8000:8000 -v lbs-data:/data --env-file lbs-stripe.env lbs
# To serve without seeding demo data, override the command:
#   docker run ... lbs sh -c 'lbs db upgrade && exec lbs serve --bind 0.0.0.0:8000'

# ---- build: wheels for lbs and every dependency (a compiler for any that has no wheel for this platform) ----
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lbs ./lbs
COPY recommender ./recommender
COPY seed ./seed
RUN pip wheel --wheel-dir /wheels .

# ---- runtime ----
FROM python:3.11-slim-bookworm
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
# libgomp1: the OpenMP runtime that LightGBM (the ranker) and implicit (ALS) link.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels lbs

RUN useradd --create-home --uid 10001 --user-group lbs \
 && mkdir /data \
 && chown lbs:lbs /data
USER lbs
WORKDIR /data
VOLUME /data

ENV LBS_DATABASE_URL=sqlite:////data/lbs.sqlite3 \
    LBS_PAYMENT_PROVIDER= \
    LBS_WORKERS=2 \
    LBS_OPERATOR_TOKEN_SHA256= \
    LBS_INDEX_REFRESH_S=1 \
    LBS_SECRET_KEY_FILE=/data/lbs-secret.key \
    LBS_MODEL_DIR=/data/lbs-models \
    LBS_LOG_LEVEL=INFO

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
# Every minute beside the server, as scripts/run does: `lbs insights refresh`, and with
# payments on `lbs payments expire`.
CMD ["sh", "-c", "set -e; lbs db upgrade; lbs demo; (while sleep 60; do lbs insights refresh >/dev/null || echo 'lbs insights refresh failed' >&2; if [ -n \"$LBS_PAYMENT_PROVIDER\" ]; then lbs payments expire >/dev/null || echo 'lbs payments expire failed' >&2; fi; done) & exec lbs serve --bind 0.0.0.0:8000"]
