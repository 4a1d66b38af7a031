//! Face geometry from landmarks: the iBUG 68 points from the 468-point mesh, eye openness, head
//! pose from the mesh's depth, and gaze.

use super::Mesh;
use crate::analysis::{HeadPose, Point};

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

/// Mirror pairs of mesh vertices (the person's right, then left) on the face's rigid parts: eye
/// outer and inner corners, the cheeks by the ears, the brows' outer ends. Each pair's line runs
/// across the face, so its depth over its width is the yaw, whatever the face looks like.
const ACROSS: [(usize, usize); 4] = [(33, 263), (133, 362), (234, 454), (70, 300)];
/// The face's midline from under the nose up to the top of the forehead, for the pitch. Above
/// the mouth, so that a jaw that opens (laughing, talking) does not tilt it.
const MIDLINE: (usize, usize) = (2, 10);
/// How far that midline leans back on a face square to the camera, in degrees: on MediaPipe's
/// canonical face model (the shape the mesh is trained to) vertex 2 sits at height -2.089 and
/// depth 6.058, vertex 10 at 8.262 and 4.482, so atan(1.577 / 10.351). Without it a face looking
/// straight at the camera read 8.7 degrees tilted back, and a pitch limit meant as symmetric let
/// a head bow 24 degrees but lift only 6.
const MIDLINE_LEAN: f32 = 8.661;

/// Head pose in degrees: yaw positive with the face turned towards the image's right, pitch
/// positive with the head bowed, roll positive with the face tilted clockwise in the image; all
/// three zero on a face square to the camera.
///
/// Read off the depth the mesh predicts for the rigid parts of the face, rather than fitted to a
/// generic face: a person's own proportions and expression then do not bend it (on the labelled
/// stills turned 0, 15 and 45 degrees, the fit to a generic face was off by 4.4 degrees on
/// average, this by 2; `emotion-service/evaluation`).
pub fn head_pose(mesh: &Mesh) -> Option<HeadPose> {
    let at = |i: usize| {
        let p = mesh.points.get(i)?;
        Some([p.x, p.y, *mesh.depth.get(i)?])
    };
    let mut across = [0f32; 3];
    for (right, left) in ACROSS {
        let (r, l) = (at(right)?, at(left)?);
        for k in 0..3 {
            across[k] += l[k] - r[k];
        }
    }
    let (below, above) = (at(MIDLINE.0)?, at(MIDLINE.1)?);
    let up = [
        above[0] - below[0],
        above[1] - below[1],
        above[2] - below[2],
    ];
    if across[0] <= f32::EPSILON || up[1] >= -f32::EPSILON {
        // Not a face the right way round: the person's left eye left of the right one, or the
        // forehead under the nose.
        return None;
    }
    Some(HeadPose {
        yaw: across[2].atan2(across[0]).to_degrees(),
        pitch: (-up[2]).atan2(-up[1]).to_degrees() + MIDLINE_LEAN,
        roll: across[1].atan2(across[0]).to_degrees(),
    })
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

    /// A mesh with the rigid vertices of a face 100 px wide, turned by `yaw` and bowed by
    /// `pitch` degrees (the rest of the vertices at the centre).
    fn turned(yaw: f32, pitch: f32) -> Mesh {
        let mut face = vec![[0f32; 3]; 468];
        for (k, (right, left)) in ACROSS.iter().enumerate() {
            let half = 50.0 - 8.0 * k as f32;
            let y = -20.0 + 10.0 * k as f32;
            face[*right] = [-half, y, 10.0];
            face[*left] = [half, y, 10.0];
        }
        // The canonical model's midline: as tall as 90 px, leaning back as the model's does.
        let lean = MIDLINE_LEAN.to_radians();
        face[MIDLINE.0] = [0.0, 30.0, -15.0];
        face[MIDLINE.1] = [0.0, -60.0, -15.0 + 90.0 * lean.tan()];
        let (ya, pa) = (yaw.to_radians(), pitch.to_radians());
        let moved: Vec<[f32; 3]> = face
            .iter()
            .map(|&[x, y, z]| {
                // Bow: the forehead (y up the image is negative) comes towards the camera.
                let (y, z) = (y * pa.cos() - z * pa.sin(), y * pa.sin() + z * pa.cos());
                // Turn: the face's left side (image right) goes away from the camera.
                (x * ya.cos() - z * ya.sin(), y, x * ya.sin() + z * ya.cos())
            })
            .map(|(x, y, z)| [x, y, z])
            .collect();
        Mesh {
            points: moved
                .iter()
                .map(|p| Point {
                    x: 320.0 + p[0],
                    y: 180.0 + p[1],
                })
                .collect(),
            depth: moved.iter().map(|p| p[2]).collect(),
            presence: 1.0,
        }
    }

    #[test]
    fn a_turned_or_bowed_head_reads_its_angles() {
        let front = head_pose(&turned(0.0, 0.0)).unwrap();
        assert!(front.yaw.abs() < 0.5 && front.pitch.abs() < 0.5 && front.roll.abs() < 0.5);
        for yaw in [-45.0, -15.0, 15.0, 45.0] {
            let p = head_pose(&turned(yaw, 0.0)).unwrap();
            assert!((p.yaw - yaw).abs() < 0.5, "{yaw}: {p:?}");
        }
        for pitch in [-20.0, 20.0] {
            let p = head_pose(&turned(0.0, pitch)).unwrap();
            assert!((p.pitch - pitch).abs() < 1.0, "{pitch}: {p:?}");
        }
    }

    #[test]
    fn a_mesh_upside_down_has_no_pose() {
        let mut m = turned(0.0, 0.0);
        for p in &mut m.points {
            p.y = 360.0 - p.y;
        }
        assert!(head_pose(&m).is_none());
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
