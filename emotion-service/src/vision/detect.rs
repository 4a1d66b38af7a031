//! BlazeFace decoding: SSD anchors, box and keypoint regression, weighted NMS. The short-range
//! (128x128) and back-camera (256x256) models share their anchors, in input-relative terms.

/// Anchors of the BlazeFace models: 16x16 cells with 2 anchors, 8x8 cells with 6.
pub fn anchors() -> Vec<(f32, f32)> {
    let mut out = Vec::with_capacity(896);
    for (cells, repeats) in [(16usize, 2usize), (8, 6)] {
        for y in 0..cells {
            for x in 0..cells {
                for _ in 0..repeats {
                    out.push((
                        (x as f32 + 0.5) / cells as f32,
                        (y as f32 + 0.5) / cells as f32,
                    ));
                }
            }
        }
    }
    out
}

/// A detection in the detector's normalised input coordinates (0..1).
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
    pub score: f32,
    /// Right eye, left eye, nose tip, mouth, right ear, left ear (the subject's sides).
    pub keypoints: [(f32, f32); 6],
}

impl Detection {
    fn area(&self) -> f32 {
        (self.xmax - self.xmin).max(0.0) * (self.ymax - self.ymin).max(0.0)
    }

    fn iou(&self, o: &Self) -> f32 {
        let w = (self.xmax.min(o.xmax) - self.xmin.max(o.xmin)).max(0.0);
        let h = (self.ymax.min(o.ymax) - self.ymin.max(o.ymin)).max(0.0);
        let inter = w * h;
        let union = self.area() + o.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

pub const MIN_SCORE: f32 = 0.5;
const MIN_SUPPRESSION_IOU: f32 = 0.3;

/// Decodes raw outputs (`regressors` 896x16, `scores` 896) of a model whose input is `input`
/// pixels square into faces, strongest first.
pub fn decode(
    regressors: &[f32],
    scores: &[f32],
    anchors: &[(f32, f32)],
    input: f32,
) -> Vec<Detection> {
    let mut candidates: Vec<Detection> = anchors
        .iter()
        .enumerate()
        .filter_map(|(i, &(ax, ay))| {
            let score = 1.0 / (1.0 + (-scores[i].clamp(-80.0, 80.0)).exp());
            if score < MIN_SCORE {
                return None;
            }
            let r = &regressors[i * 16..(i + 1) * 16];
            let (cx, cy) = (r[0] / input + ax, r[1] / input + ay);
            let (w, h) = (r[2] / input, r[3] / input);
            let mut keypoints = [(0.0, 0.0); 6];
            for (k, kp) in keypoints.iter_mut().enumerate() {
                *kp = (r[4 + 2 * k] / input + ax, r[5 + 2 * k] / input + ay);
            }
            (w > 0.0 && h > 0.0).then_some(Detection {
                xmin: cx - w / 2.0,
                ymin: cy - h / 2.0,
                xmax: cx + w / 2.0,
                ymax: cy + h / 2.0,
                score,
                keypoints,
            })
        })
        .collect();
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    weighted_nms(candidates)
}

/// MediaPipe's weighted non-maximum suppression: overlapping candidates are averaged, weighted by
/// score, instead of being dropped, which steadies the box from frame to frame.
fn weighted_nms(mut remaining: Vec<Detection>) -> Vec<Detection> {
    let mut out = Vec::new();
    while !remaining.is_empty() {
        let top = remaining[0].clone();
        let (group, rest): (Vec<Detection>, Vec<Detection>) = remaining
            .into_iter()
            .partition(|d| d.iou(&top) > MIN_SUPPRESSION_IOU);
        remaining = rest;
        let total: f32 = group.iter().map(|d| d.score).sum();
        let avg = |f: &dyn Fn(&Detection) -> f32| {
            group.iter().map(|d| f(d) * d.score).sum::<f32>() / total
        };
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (avg(&|d| d.keypoints[k].0), avg(&|d| d.keypoints[k].1));
        }
        out.push(Detection {
            xmin: avg(&|d| d.xmin),
            ymin: avg(&|d| d.ymin),
            xmax: avg(&|d| d.xmax),
            ymax: avg(&|d| d.ymax),
            score: top.score,
            keypoints,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_896_anchors_centred_in_their_cells() {
        let a = anchors();
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], (1.0 / 32.0, 1.0 / 32.0));
        assert_eq!(a[512], (1.0 / 16.0, 1.0 / 16.0));
    }

    #[test]
    fn overlapping_boxes_merge_and_separate_faces_stay_apart() {
        let anchors = anchors();
        let mut regs = vec![0f32; 896 * 16];
        let mut scores = vec![-10f32; 896];
        // Anchors 0 and 1 share a cell (one face seen twice); anchor 300 is elsewhere.
        for (i, size) in [(0usize, 40f32), (1, 42.0), (300, 30.0)] {
            regs[i * 16 + 2] = size;
            regs[i * 16 + 3] = size;
            scores[i] = 5.0;
        }
        let faces = decode(&regs, &scores, &anchors, 128.0);
        assert_eq!(faces.len(), 2, "{faces:?}");
    }
}
