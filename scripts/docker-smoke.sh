#!/usr/bin/env bash
# Build the LSTM Lens image and check it as an operator meets it (for maintainers; not part of
# .ci/run: it needs root or a Docker engine, and minutes): the pipeline refuses a root-owned data
# folder in one line (exit 2), builds a small run with plain progress lines (no carriage returns),
# and a --read-only container (no --tmpfs) serves it read-only with a login from a mounted file:
# /healthz, Docker's health status, 401 then 200, no Server header, a CSP, no-store, and an access
# log in docker logs without credentials or tracebacks.
#
#   scripts/docker-smoke.sh            use the Docker engine DOCKER_HOST / the default socket points
#                                      at (a normal build from PyPI); without one, the offline mode
#   scripts/docker-smoke.sh --offline  for machines that reach only Debian's and PyPI's mirrors from
#                                      the host, not from a build: starts a private dockerd (its own
#                                      data root and socket, no bridge, no iptables), makes a base
#                                      image with debootstrap (Debian bookworm + python3.11) and
#                                      feeds the build wheels downloaded on the host.
#
# Environment: IMAGE (tag, default lstm-lens:smoke), PORT (host port, default 18050),
# SMOKE_WORK (offline mode's work folder, default /tmp/lstm-lens-smoke; kept between runs so the
# base image and wheels are made once), DEBIAN_MIRROR (default: the mirror apt uses here).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-lstm-lens:smoke}
PORT=${PORT:-18050}
WORK=${SMOKE_WORK:-/tmp/lstm-lens-smoke}
BASE_TAG=lstm-lens-base:bookworm
WHEELS_TAG=lstm-lens-wheels:local
MODE=${1:-auto}
DOCKERD_PID=
CONTAINER=

log() { printf '[docker-smoke %(%H:%M:%S)T] %s\n' -1 "$*"; }

cleanup() {
  if [[ -n $CONTAINER ]]; then docker rm -f "$CONTAINER" >/dev/null 2>&1 || true; fi
  if [[ -n $DOCKERD_PID ]]; then
    log "stopping the private dockerd (pid $DOCKERD_PID)"
    kill "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 1; done
  fi
}
trap cleanup EXIT

debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -rhoE '^(URIs:|deb) +[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
        | head -n1 | awk '{print $2}') || true
  echo "${uri:-http://deb.debian.org/debian}"
}

start_private_dockerd() {
  command -v dockerd >/dev/null || { log "no dockerd (apt-get install docker.io)"; exit 1; }
  mkdir -p "$WORK/docker" "$WORK/exec"
  export DOCKER_HOST="unix://$WORK/docker.sock"
  log "starting a private dockerd on $DOCKER_HOST (log: $WORK/dockerd.log)"
  dockerd --data-root "$WORK/docker" --exec-root "$WORK/exec" --pidfile "$WORK/dockerd.pid" \
          --host "$DOCKER_HOST" --bridge=none --iptables=false --ip6tables=false \
          --ip-forward=false --ip-masq=false >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && return; sleep 1; done
  log "dockerd did not start; its log:"; tail -20 "$WORK/dockerd.log"; exit 1
}

make_base_image() {
  if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then log "base image $BASE_TAG exists"; return; fi
  command -v debootstrap >/dev/null || { log "no debootstrap (apt-get install debootstrap)"; exit 1; }
  local rootfs="$WORK/rootfs" mirror
  mirror=$(debian_mirror)
  if [[ ! -x $rootfs/usr/bin/python3.11 ]]; then
    log "debootstrap bookworm from $mirror into $rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3.11,python3.11-venv,python3-venv,passwd,ca-certificates \
      bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  fi
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  log "importing $rootfs as $BASE_TAG"
  tar -C "$rootfs" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$BASE_TAG" >/dev/null
}

make_wheels_image() {
  mkdir -p "$WORK/wheels"
  log "downloading wheels on the host into $WORK/wheels"
  grep -vE '^(pytest|playwright)==' requirements.txt > "$WORK/requirements-image.txt"
  # The host's pip picks wheels for the host, which must match the image: Debian bookworm,
  # x86_64, CPython 3.11 (checked below).
  python3 - <<'PY'
import platform, sys
if sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64":
    sys.exit(f"the offline mode downloads wheels for this host; it needs CPython 3.11 on x86_64, "
             f"not {platform.python_version()} on {platform.machine()}")
PY
  python3 -m pip download --only-binary=:all: -r "$WORK/requirements-image.txt" -d "$WORK/wheels" \
    >"$WORK/pip-download.log" 2>&1 || { tail -20 "$WORK/pip-download.log"; exit 1; }
  printf 'FROM scratch\nCOPY . /wheels/\n' > "$WORK/wheels.Dockerfile"
  docker build --quiet -f "$WORK/wheels.Dockerfile" -t "$WHEELS_TAG" "$WORK/wheels" >/dev/null
}

build_args=()
run_network=()
if [[ $MODE == auto ]] && docker info >/dev/null 2>&1; then
  log "using the Docker engine at ${DOCKER_HOST:-the default socket}"
else
  [[ $(id -u) == 0 ]] || { log "the offline mode needs root"; exit 1; }
  start_private_dockerd
  make_base_image
  make_wheels_image
  build_args=(--network host --build-arg "BASE_IMAGE=$BASE_TAG" --build-arg "WHEELS_FROM=$WHEELS_TAG")
  run_network=(--network host)        # no bridge here: the container shares the host's loopback
  PORT_CONTAINER=$PORT
fi

log "building $IMAGE"
started=$SECONDS
docker build "${build_args[@]}" -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
log "built in $((SECONDS - started)) s; image size $(docker image inspect -f '{{.Size}}' "$IMAGE" \
    | awk '{printf "%.0f MB", $1 / 1e6}')"
docker image ls "$IMAGE"

if [[ ${#run_network[@]} -gt 0 ]]; then
  publish=(-e "LSTM_LENS_BIND=127.0.0.1:$PORT_CONTAINER")
else
  publish=(-p "127.0.0.1:$PORT:8050")
fi
log "user in the image: $(docker run --rm "${run_network[@]}" "$IMAGE" id)"

# A fresh machine: Docker creates the mounted folder owned by root; the pipeline (uid 10001) must
# stop with one line saying what to do, not a traceback.
FRESH="$WORK/fresh-data"
rm -rf "$FRESH" && mkdir -m 755 "$FRESH"
set +e
refusal=$(docker run --rm "${run_network[@]}" -v "$FRESH:/app/data" "$IMAGE" python -m pipeline run synthetic 2>&1)
refused=$?
set -e
log "pipeline into a root-owned folder: exit $refused: $refusal"
[[ $refused == 2 && $refusal == "error: /app/data is not writable by uid 10001"* && $(wc -l <<<"$refusal") == 1 ]] \
  || { log "expected one error line and exit 2"; exit 1; }

# The same image builds a run (a small one) into a mounted data folder, then serves it.
DATA="$WORK/data"
rm -rf "$DATA" && mkdir -p "$DATA/runs"
chown -R 10001:10001 "$DATA" 2>/dev/null || chmod -R a+rwX "$DATA"
log "building a small synthetic run in the image: python -m pipeline run synthetic --epochs 2 --units 8"
started=$SECONDS
docker run --rm "${run_network[@]}" -v "$DATA:/app/data" "$IMAGE" \
  python -m pipeline run synthetic --epochs 2 --units 8 >"$WORK/pipeline.log" 2>&1 \
  || { tail -30 "$WORK/pipeline.log"; exit 1; }
log "pipeline in the image: done in $((SECONDS - started)) s; $(ls "$DATA/runs")"
if grep -q $'\r' "$WORK/pipeline.log"; then log "carriage returns in the pipeline's log"; exit 1; fi
grep -q '^train: 100%' "$WORK/pipeline.log" || { log "no plain progress lines in the pipeline's log"; exit 1; }

# Served read-only (no --tmpfs /tmp), the runs mounted read-only, a login from a mounted file.
USERS="$WORK/users.txt"
python3 -c "from werkzeug.security import generate_password_hash as h; print('ada:' + h('smoke-test-pw'))" >"$USERS" \
  2>/dev/null || docker run --rm "$IMAGE" python -c "from werkzeug.security import generate_password_hash as h; print('ada:' + h('smoke-test-pw'))" >"$USERS"
chmod 644 "$USERS"
log "starting a read-only container with a login on 127.0.0.1:$PORT serving $DATA"
CONTAINER=$(docker run -d --read-only "${run_network[@]}" "${publish[@]}" -v "$DATA:/app/data:ro" \
  -v "$USERS:/run/secrets/users:ro" -e LSTM_LENS_AUTH_FILE=/run/secrets/users "$IMAGE")
health=
for _ in $(seq 60); do
  if health=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=2).read().decode())" 2>/dev/null); then
    break
  fi
  sleep 1
done
[[ -n $health ]] || { log "no answer from /healthz; container log:"; docker logs "$CONTAINER" 2>&1 | tail -30; exit 1; }
log "GET /healthz -> $health"
for _ in $(seq 90); do
  state=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$CONTAINER")
  [[ $state == starting ]] || break
  sleep 1
done
log "Docker HEALTHCHECK status: $state"
[[ $state == healthy ]] || { docker inspect -f '{{json .State.Health}}' "$CONTAINER"; exit 1; }
answers=$(python3 - "$PORT" <<'PY'
import base64, sys, urllib.error, urllib.request
port = sys.argv[1]
def get(headers):
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        response = error
    return response.status, response.headers
login = {"Authorization": "Basic " + base64.b64encode(b"ada:smoke-test-pw").decode()}
without, _ = get({})
status, headers = get(login)
print(without, status, "server" if headers.get("Server") else "no-server",
      "csp" if "frame-ancestors" in headers.get("Content-Security-Policy", "") else "no-csp",
      headers.get("Cache-Control"))
PY
)
log "GET / without and with the login, headers: $answers"
[[ $answers == "401 200 no-server csp no-store" && $health == *'"runs":1'* ]] \
  || { log "expected 401, then 200 without a Server header, with a CSP and no-store, and one run"; exit 1; }
logs=$(docker logs "$CONTAINER" 2>&1)
grep -q '"GET / HTTP/1.1" 200' <<<"$logs" || { log "no access-log line in docker logs"; exit 1; }
if grep -q 'smoke-test-pw\|YWRhOnNtb2tl\|No usable temporary directory\|Traceback' <<<"$logs"; then
  log "docker logs hold a credential or a traceback:"; tail -20 <<<"$logs"; exit 1
fi
log "container log:"; tail -8 <<<"$logs"
log "smoke test passed"
