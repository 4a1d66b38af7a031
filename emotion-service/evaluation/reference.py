"""The independent reference for the signal evaluation: MediaPipe's own face mesh (the attention
model, 478 points with irises and refined eyelids, in MediaPipe's C++ graph with its own detector,
crops and tracking), run over a clip's frames in order, with head pose read off the mesh's own
depth.

No code or model is shared with the service: another landmark model (trained apart, with
refined eyes), another runtime, its own face detector, crops (turned upright) and tracking. What
both share is the arithmetic on top: the same rigid points give the pose, the same rule gives eye
contact. So their agreement measures the landmarks and their depth; the labelled stills (the
angle their dataset photographed them at) check the arithmetic.

usage: reference.py [--stills] OUT.json IMAGE...
  the images are a clip's frames in order, or with --stills unrelated photos (nothing tracked)
"""

import json
import pathlib
import sys

import cv2
import mediapipe as mp
import numpy as np

# The same rigid points the service reads its pose from (emotion-service/src/vision/geometry.rs):
# mirror pairs across the face (the person's right, then left: eye outer and inner corners, cheeks
# by the ears, brows' outer ends), whose depth over width is the yaw, and the midline from under
# the nose to the top of the forehead, whose depth over height is the pitch.
ACROSS = [(33, 263), (133, 362), (234, 454), (70, 300)]
MIDLINE = (2, 10)
# How far that midline leans back on a face square to the camera (MediaPipe's canonical face
# model), added so that such a face reads pitch 0, as the service does.
MIDLINE_LEAN = 8.661

# Eye aspect ratio points p1..p6 and the iris centre of each eye in the 478-point mesh.
EYES = [
    ([33, 160, 158, 133, 153, 144], 468),
    ([362, 385, 387, 263, 373, 380], 473),
]

# The service's rule for eye contact (emotion-service/src/vision): facing the camera within these
# angles, the iris in the middle of the eye.
EYE_CONTACT_YAW = 15.0
EYE_CONTACT_PITCH = 15.0
GAZE_CENTRE = (0.3, 0.7)

# Raised whenever what this script writes changes meaning (2: pitch zero on a face square to the
# camera); the evaluation command runs the script again over a cache written by another revision.
REVISION = 2


def pose(points):
    """Yaw and pitch in degrees from the mesh's own depth, signed as the service signs them."""
    p = np.array(points)
    across = sum(p[left] - p[right] for right, left in ACROSS)
    yaw = np.degrees(np.arctan2(across[2], across[0]))
    up = p[MIDLINE[1]] - p[MIDLINE[0]]
    pitch = np.degrees(np.arctan2(-up[2], -up[1])) + MIDLINE_LEAN
    return float(yaw), float(pitch)


def eye(points, contour, iris):
    p = [np.array(points[i][:2]) for i in contour]
    width = np.linalg.norm(p[0] - p[3])
    ear = (np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * width)
    axis = p[3] - p[0]
    gaze = float(np.dot(np.array(points[iris][:2]) - p[0], axis) / np.dot(axis, axis))
    return float(ear), gaze


def frame_number(path):
    """The number in a frame's file name: frame_999.jpg comes before frame_1000.jpg, which a
    shell's glob sorts the other way round."""
    return int("".join(c for c in pathlib.Path(path).stem if c.isdigit()) or 0)


def main(stills, out, images):
    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=stills,
        max_num_faces=1,
        refine_landmarks=True,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )
    rows = []
    if not stills:
        images = sorted(images, key=frame_number)
    for path in map(pathlib.Path, images):
        bgr = cv2.imread(str(path))
        height, width = bgr.shape[:2]
        result = mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        row = {"frame": path.name, "face": bool(result.multi_face_landmarks)}
        if result.multi_face_landmarks:
            lm = result.multi_face_landmarks[0].landmark
            points = [(p.x * width, p.y * height, p.z * width) for p in lm]
            (ear_l, gaze_l), (ear_r, gaze_r) = (eye(points, c, i) for c, i in EYES)
            row["ear"] = (ear_l + ear_r) / 2
            row["gaze"] = (gaze_l + gaze_r) / 2
            row["yaw"], row["pitch"] = pose(points)
            row["eye_contact"] = (
                abs(row["yaw"]) <= EYE_CONTACT_YAW
                and abs(row["pitch"]) <= EYE_CONTACT_PITCH
                and GAZE_CENTRE[0] <= row["gaze"] <= GAZE_CENTRE[1]
            )
        rows.append(row)
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(out).write_text(json.dumps({"revision": REVISION, "frames": rows}, indent=None))


if __name__ == "__main__":
    stills = sys.argv[1] == "--stills"
    args = sys.argv[2:] if stills else sys.argv[1:]
    main(stills, args[0], args[1:])
