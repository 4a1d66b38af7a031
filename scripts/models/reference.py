"""Produces the parity fixture: each model's outputs from its original runtime (LiteRT for the
MediaPipe models and for fer's quantized TFLite expression model) on real frames.

Inputs are made with nearest-neighbour sampling from lossless PNG frames, so the Rust side can
rebuild exactly the same tensors. Run once; the JSON it writes is committed.

usage: reference.py MODEL_SOURCES_DIR MEDIA_DIR OUT.json
"""
import json
import sys

import numpy as np
from PIL import Image
from ai_edge_litert.interpreter import Interpreter


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


def main():
    src, media, out = sys.argv[1:4]
    cases = []
    frames = [0, 27, 60]
    for n in frames:
        name = f"single_face_png/frame_{n:03d}.png"
        rgb = np.asarray(Image.open(f"{media}/{name}").convert("RGB")).astype(np.float32)
        h, w = rgb.shape[:2]

        det_in = nearest(rgb, (0, 0, w, h), 128) / 127.5 - 1.0
        det = run(f"{src}/face_detection_short_range.tflite", det_in)
        scores, boxes = det["classificators"].reshape(-1), det["regressors"].reshape(-1, 16)
        top = np.argsort(-scores)[:3]
        cases.append({"model": "face_detection_short_range", "frame": name, "box": [0, 0, w, h], "size": 128,
                      "range": [-1, 1], "flip": False, "top": [int(i) for i in top],
                      "scores": [float(scores[i]) for i in top], "regressors": [boxes[i].tolist() for i in top]})

        # The face box from the best anchor (normalised to the frame), squared and enlarged 1.5x.
        i = top[0]
        ax, ay = (i % 512 // 2 % 16 + 0.5) / 16 if i < 512 else ((i - 512) // 6 % 8 + 0.5) / 8, \
                 (i // 32 + 0.5) / 16 if i < 512 else ((i - 512) // 48 + 0.5) / 8
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
        probs = run(f"{src}/emotion_model_quantized.tflite", fer_in)
        cases.append({"model": "fer_emotion", "frame": name, "box": fer_box, "size": 64, "range": [-1, 1],
                      "flip": False, "gray": True, "outputs": {"predictions": list(probs.values())[0].reshape(-1).tolist()}})
    with open(out, "w") as f:
        json.dump({"runtime": "ai-edge-litert 2.3.0", "cases": cases}, f)
    print(f"{len(cases)} reference cases written to {out}")


if __name__ == "__main__":
    main()
