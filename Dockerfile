# LSTM Lens: the dashboard (gunicorn serving app:server) and the pipeline in one image.
#
#   docker build -t lstm-lens .
#   mkdir -p data && docker run --user "$(id -u):$(id -g)" -v "$PWD/data:/app/data" lstm-lens \
#       python -m pipeline run synthetic                                        # build a run
#   docker run -p 127.0.0.1:8050:8050 -v "$PWD/data:/app/data" lstm-lens     # serve data/runs
#
# Build arguments:
#   BASE_IMAGE   a Debian-like image with python3 (3.11) and its venv module (default python:3.11-slim)
#   WHEELS_FROM  an image holding wheels in /wheels to install offline (default: none, use PyPI);
#                scripts/docker-smoke.sh uses it where the build cannot reach PyPI.
# Runtime environment: LSTM_LENS_WORKERS, LSTM_LENS_THREADS, LSTM_LENS_BIND (gunicorn),
# LSTM_LENS_RUNS, LSTM_LENS_FRAME_ANCESTORS, and for a login LSTM_LENS_AUTH_FILE (a mounted file,
# readable by uid 10001) or LSTM_LENS_USERS + LSTM_LENS_PASSWORD, LSTM_LENS_LOGIN_LIMIT,
# LSTM_LENS_PROXIES; see README. The entrypoint (scripts/docker-entrypoint.sh) checks that the
# pipeline can write the runs folder and gives --read-only containers /dev/shm as TMPDIR.
ARG BASE_IMAGE=python:3.11-slim
ARG WHEELS_FROM=no-wheels

FROM ${BASE_IMAGE} AS no-wheels
RUN mkdir -p /wheels

FROM ${WHEELS_FROM} AS wheels

FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt /tmp/requirements.txt
COPY --from=wheels /wheels /tmp/wheels
# The image serves and builds runs; the test tools (pytest, playwright and its browser driver) stay
# out, and so does what only compiling against the libraries needs: TensorFlow's C++ headers, the
# libclang that TensorFlow installs for its code generators, the libraries' own test suites.
RUN grep -vE '^(pytest|playwright)==' /tmp/requirements.txt > /tmp/requirements-image.txt \
    && python3 -m venv /opt/venv \
    && if [ -n "$(ls -A /tmp/wheels)" ]; then set -- --no-index --find-links /tmp/wheels; fi \
    && /opt/venv/bin/pip install --no-cache-dir "$@" -r /tmp/requirements-image.txt \
    && /opt/venv/bin/pip uninstall --yes --no-cache-dir libclang \
    && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && rm -rf "$site/tensorflow/include" \
    && for package in numpy pandas pyarrow scipy sklearn; do \
         find "$site/$package" -depth -type d -name tests -prune -exec rm -rf {} +; \
       done \
    && find /opt/venv -depth -type d -name __pycache__ -prune -exec rm -rf {} + \
    && rm -rf /tmp/wheels

FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    LSTM_LENS_RUNS=/app/data/runs \
    LSTM_LENS_BIND=0.0.0.0:8050 \
    LSTM_LENS_WORKERS=2 \
    LSTM_LENS_THREADS=4
RUN useradd --create-home --uid 10001 --user-group lens \
    && mkdir -p /app/data/runs \
    && chown -R lens:lens /app/data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY app.py ./
COPY assets ./assets
COPY dashboard ./dashboard
COPY pipeline ./pipeline
COPY scripts/docker-entrypoint.sh /app/docker-entrypoint.sh
USER 10001:10001
VOLUME ["/app/data"]
EXPOSE 8050
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ['LSTM_LENS_BIND'].rsplit(':', 1)[1]; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4).status != 200)"]
# Inside the container the server listens on every interface: the container boundary (and the
# published port) is the network control. Never debug mode here.
ENTRYPOINT ["/bin/sh", "/app/docker-entrypoint.sh"]
CMD ["gunicorn", "--config", "dashboard/gunicorn_conf.py", "app:server"]
