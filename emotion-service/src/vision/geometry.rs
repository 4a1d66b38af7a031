//! Face geometry from landmarks: the iBUG 68 points from the 468-point mesh, eye openness, head
//! pose against a generic 3-D face, and gaze.

use crate::analysis::Point;

/// For each iBUG-68 point, the face-mesh vertex that sits at the same place.
pub const MESH_TO_68: [usize; 68] = [
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356, // jaw
    70, 63, 105, 66, 107, // right brow
    336, 296, 334, 293, 300, // left brow
    168, 197, 5, 4, // nose bridge
    75, 97, 2, 326, 305, // nostrils
    33, 160, 158, 133, 153, 144, // right eye
    362, 385, 387, 263, 373, 380, // left eye
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, // outer lips
    78, 82, 13, 312, 308, 317, 14, 87, // inner lips
];

/// Eye-contour indices of the iris model's 71 points used as p1..p6 of the eye aspect ratio
/// (Soukupova & Cech 2016): corners at 0 and 8, upper lid 11 and 13, lower lid 5 and 3.
pub const EAR_CONTOUR: [usize; 6] = [0, 11, 13, 8, 5, 3];

fn dist(a: Point, b: Point) -> f32 {
    ((a.x - b.x).powi(2) + (a.y - b.y).powi(2)).sqrt()
}

/// Eye aspect ratio: lid distance over corner distance (~0.3 open, under ~0.1 closed).
pub fn eye_aspect_ratio(contour: &[Point]) -> f32 {
    let p: Vec<Point> = EAR_CONTOUR.iter().map(|&i| contour[i]).collect();
    let width = dist(p[0], p[3]);
    if width <= f32::EPSILON {
        return 0.0;
    }
    (dist(p[1], p[5]) + dist(p[2], p[4])) / (2.0 * width)
}

/// A generic adult face in millimetres (x right, y up, z towards the camera), at iBUG indices:
/// nose tip, chin, eye outer corners, mouth corners, nose bridge.
const MODEL_3D: [(usize, [f32; 3]); 7] = [
    (30, [0.0, 0.0, 0.0]),
    (8, [0.0, -63.6, -12.5]),
    (36, [-43.3, 32.7, -26.0]),
    (45, [43.3, 32.7, -26.0]),
    (48, [-28.9, -28.9, -24.1]),
    (54, [28.9, -28.9, -24.1]),
    (27, [0.0, 30.0, -20.0]),
];

/// Head pose in degrees: yaw (left-right), pitch (up-down), roll (tilt).
///
/// Scaled orthographic fit (POS): the rotation whose projection of the generic face best matches
/// the landmarks in the least-squares sense. Webcam faces are far enough for the orthographic
/// approximation to hold to a few degrees.
pub fn head_pose(landmarks: &[Point]) -> Option<(f32, f32, f32)> {
    if landmarks.len() < 68 {
        return None;
    }
    let n = MODEL_3D.len() as f32;
    let model_mean = MODEL_3D.iter().fold([0f32; 3], |acc, (_, p)| {
        [acc[0] + p[0] / n, acc[1] + p[1] / n, acc[2] + p[2] / n]
    });
    let (mut u_mean, mut v_mean) = (0f32, 0f32);
    for (i, _) in MODEL_3D {
        u_mean += landmarks[i].x / n;
        v_mean -= landmarks[i].y / n; // image y grows down, the model's y up
    }
    // Normal equations: (MᵀM) r = Mᵀu for each image axis.
    let mut mtm = [[0f32; 3]; 3];
    let (mut mtu, mut mtv) = ([0f32; 3], [0f32; 3]);
    for (i, p) in MODEL_3D {
        let m = [
            p[0] - model_mean[0],
            p[1] - model_mean[1],
            p[2] - model_mean[2],
        ];
        let u = landmarks[i].x - u_mean;
        let v = -landmarks[i].y - v_mean;
        for a in 0..3 {
            for b in 0..3 {
                mtm[a][b] += m[a] * m[b];
            }
            mtu[a] += m[a] * u;
            mtv[a] += m[a] * v;
        }
    }
    let inv = invert3(mtm)?;
    let r1 = mul3(&inv, mtu);
    let r2 = mul3(&inv, mtv);
    let r1 = normalise(r1)?;
    let dot = r1[0] * r2[0] + r1[1] * r2[1] + r1[2] * r2[2];
    let r2 = normalise([
        r2[0] - dot * r1[0],
        r2[1] - dot * r1[1],
        r2[2] - dot * r1[2],
    ])?;
    let r3 = [
        r1[1] * r2[2] - r1[2] * r2[1],
        r1[2] * r2[0] - r1[0] * r2[2],
        r1[0] * r2[1] - r1[1] * r2[0],
    ];
    // Rows r1, r2, r3 form R = Rz(roll)·Ry(yaw)·Rx(pitch).
    let yaw = (-r3[0]).clamp(-1.0, 1.0).asin();
    let pitch = r3[1].atan2(r3[2]);
    let roll = r2[0].atan2(r1[0]);
    Some((yaw.to_degrees(), pitch.to_degrees(), -roll.to_degrees()))
}

fn normalise(v: [f32; 3]) -> Option<[f32; 3]> {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    (n > f32::EPSILON).then(|| [v[0] / n, v[1] / n, v[2] / n])
}

fn mul3(m: &[[f32; 3]; 3], v: [f32; 3]) -> [f32; 3] {
    [0, 1, 2].map(|r| m[r][0] * v[0] + m[r][1] * v[1] + m[r][2] * v[2])
}

fn invert3(m: [[f32; 3]; 3]) -> Option<[[f32; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-9 {
        return None;
    }
    let c =
        |r1: usize, c1: usize, r2: usize, c2: usize| m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1];
    let adj = [
        [c(1, 1, 2, 2), -c(0, 1, 2, 2), c(0, 1, 1, 2)],
        [-c(1, 0, 2, 2), c(0, 0, 2, 2), -c(0, 0, 1, 2)],
        [c(1, 0, 2, 1), -c(0, 0, 2, 1), c(0, 0, 1, 1)],
    ];
    Some(adj.map(|row| row.map(|v| v / det)))
}

/// Where the iris sits between the eye corners, 0 (at one corner) .. 1 (at the other).
pub fn iris_position(contour: &[Point], iris_centre: Point) -> f32 {
    let (a, b) = (contour[EAR_CONTOUR[0]], contour[EAR_CONTOUR[3]]);
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    if len2 <= f32::EPSILON {
        return 0.5;
    }
    (((iris_centre.x - a.x) * dx + (iris_centre.y - a.y) * dy) / len2).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaw_deg: f32) -> Vec<Point> {
        let yaw = yaw_deg.to_radians();
        let mut pts = vec![Point { x: 0.0, y: 0.0 }; 68];
        for (i, p) in MODEL_3D {
            let x = p[0] * yaw.cos() + p[2] * yaw.sin();
            pts[i] = Point {
                x: 320.0 + 2.0 * x,
                y: 180.0 - 2.0 * p[1],
            };
        }
        pts
    }

    #[test]
    fn a_frontal_face_has_no_yaw_and_a_turned_one_has_its_angle() {
        let (yaw, pitch, roll) = head_pose(&project(0.0)).unwrap();
        assert!(
            yaw.abs() < 1.0 && pitch.abs() < 1.0 && roll.abs() < 1.0,
            "{yaw} {pitch} {roll}"
        );
        let (yaw, _, _) = head_pose(&project(30.0)).unwrap();
        assert!((yaw.abs() - 30.0).abs() < 3.0, "{yaw}");
    }

    #[test]
    fn open_eyes_have_a_larger_aspect_ratio_than_closed_ones() {
        let mut eye = vec![Point { x: 0.0, y: 0.0 }; 71];
        let set = |eye: &mut Vec<Point>, lid: f32| {
            eye[0] = Point { x: 0.0, y: 0.0 };
            eye[8] = Point { x: 30.0, y: 0.0 };
            eye[11] = Point { x: 10.0, y: -lid };
            eye[13] = Point { x: 20.0, y: -lid };
            eye[5] = Point { x: 20.0, y: lid };
            eye[3] = Point { x: 10.0, y: lid };
        };
        set(&mut eye, 5.0);
        let open = eye_aspect_ratio(&eye);
        set(&mut eye, 1.0);
        assert!(open > 0.3 && eye_aspect_ratio(&eye) < 0.1);
    }
}
