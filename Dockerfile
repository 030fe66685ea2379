# The hook service image: gunicorn serving hooks.app:app with gunicorn.conf.py.
# Build: docker build -t ghcr.io/kuberik/rollout-controller-hooks:dev .

# --- builder: wheels for every pinned runtime dependency -------------------------------
FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --wheel-dir /wheels -r requirements.txt

# --- runtime: no compilers, no pip cache, non-root -------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PORT=8080
RUN groupadd --system --gid 10001 hooks \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin hooks
COPY --from=builder /wheels /wheels
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-index --find-links /wheels -r /tmp/requirements.txt \
    && rm -rf /wheels /tmp/requirements.txt
WORKDIR /app
COPY gunicorn.conf.py ./
COPY hooks/ ./hooks/
RUN python -m compileall -q /app/hooks
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["gunicorn", "--config", "gunicorn.conf.py", "hooks.app:app"]
