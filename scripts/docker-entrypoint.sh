#!/bin/sh
# The LSTM Lens image's entrypoint: checks what a command cannot work without, in one line each,
# then runs the command (exec: it becomes the container's main process and gets its signals).
#
# - A temporary folder: when neither $TMPDIR nor /tmp is writable (docker run --read-only without
#   --tmpfs /tmp), TMPDIR becomes /dev/shm, which Docker mounts writable in every container.
# - The runs folder, for the pipeline commands that write runs (python -m pipeline run, import,
#   project): it (or, before it exists, the nearest folder above it) must be writable by this
#   user, else one line says what to do and the container exits with status 2. On a fresh machine
#   `docker run -v "$PWD/data:/app/data" ...` makes Docker create ./data owned by root.
set -eu

writable() { [ -d "$1" ] && [ -w "$1" ] && [ -x "$1" ]; }

if ! writable "${TMPDIR:-/tmp}"; then
  if writable /dev/shm; then
    export TMPDIR=/dev/shm
  else
    echo "error: no writable temporary folder (${TMPDIR:-/tmp}, /dev/shm): run with --tmpfs /tmp" >&2
    exit 2
  fi
fi

# python -m pipeline <command> ...: the folder it writes runs into.
writes_runs=no
runs=${LSTM_LENS_RUNS:-data/runs}
if [ $# -ge 4 ] && [ "$2" = "-m" ] && [ "$3" = "pipeline" ]; then
  case $(basename "$1") in
    python|python3|python3.*)
      case $4 in run|import|project) writes_runs=yes ;; esac ;;
  esac
fi
if [ $writes_runs = yes ]; then
  previous=
  for arg in "$@"; do
    case $arg in --runs=*) runs=${arg#--runs=} ;; esac
    if [ "$previous" = "--runs" ]; then runs=$arg; fi
    previous=$arg
  done
  folder=$runs
  while [ ! -e "$folder" ] && [ "$folder" != "/" ] && [ "$folder" != "." ]; do
    folder=$(dirname "$folder")
  done
  case $folder in /*) ;; *) absolute=$(cd "$folder" 2>/dev/null && pwd) && folder=$absolute ;; esac
  if ! writable "$folder"; then
    echo "error: $folder is not writable by uid $(id -u): run with --user \"\$(id -u):\$(id -g)\" or chown -R $(id -u) the mounted folder (e.g. sudo chown -R $(id -u) data)" >&2
    exit 2
  fi
fi

exec "$@"
