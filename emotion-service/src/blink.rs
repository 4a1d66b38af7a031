//! Blinks over time from the eye aspect ratio of successive frames of one session.
//!
//! The eyes count as closed when the ratio drops under 60% of the person's own open-eye level
//! (the running median of recent open frames), since the open level differs between people and
//! landmarkers. A closure that reopens within 30-500 ms is a blink; longer ones are not blinks but
//! still count towards PERCLOS (the share of time the eyes are closed).

use std::collections::VecDeque;

/// Share of the open-eye level under which the eyes count as closed.
pub const CLOSED_RATIO: f32 = 0.6;
/// Open frames remembered for the running median (~3 s at 30 fps).
const HISTORY: usize = 90;
/// Blinks last roughly 100-400 ms; anything from one frame to half a second counts.
const BLINK_MS: (i64, i64) = (30, 500);
/// Longer gaps between frames are not attributed to either state.
const MAX_GAP_MS: i64 = 1000;

/// A completed blink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blink {
    pub started_at: i64,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct BlinkTracker {
    open_levels: VecDeque<f32>,
    closed_since: Option<i64>,
    last_seen: Option<i64>,
    closed_ms: i64,
    observed_ms: i64,
    count: i64,
    blink_ms: i64,
    first_seen: Option<i64>,
    /// When each counted blink began, oldest first: clients read them beside the count.
    started: Vec<i64>,
}

/// What one observation says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub closed: bool,
    /// A blink that ended with this frame.
    pub blink: Option<Blink>,
}

impl BlinkTracker {
    /// Takes the next frame (in time order): its timestamp and eye aspect ratio, `None` without eyes.
    pub fn observe(&mut self, timestamp: i64, ratio: Option<f32>) -> Observation {
        let Some(ratio) = ratio else {
            self.closed_since = None;
            self.last_seen = None;
            return Observation {
                closed: false,
                blink: None,
            };
        };
        self.first_seen.get_or_insert(timestamp);
        let gap = self
            .last_seen
            .map(|t| timestamp - t)
            .filter(|d| (0..=MAX_GAP_MS).contains(d));
        self.last_seen = Some(timestamp);
        let level = self.open_level().unwrap_or(ratio);
        let closed = ratio < CLOSED_RATIO * level;
        if let Some(gap) = gap {
            self.observed_ms += gap;
            if closed {
                self.closed_ms += gap;
            }
        }
        if closed {
            self.closed_since.get_or_insert(timestamp);
            return Observation {
                closed,
                blink: None,
            };
        }
        self.open_levels.push_back(ratio);
        if self.open_levels.len() > HISTORY {
            self.open_levels.pop_front();
        }
        let blink = self.closed_since.take().and_then(|start| {
            let duration_ms = timestamp - start;
            (BLINK_MS.0..=BLINK_MS.1)
                .contains(&duration_ms)
                .then_some(Blink {
                    started_at: start,
                    duration_ms,
                })
        });
        if let Some(b) = blink {
            self.count += 1;
            self.blink_ms += b.duration_ms;
            self.started.push(b.started_at);
        }
        Observation { closed, blink }
    }

    fn open_level(&self) -> Option<f32> {
        if self.open_levels.len() < 3 {
            return None;
        }
        let mut v: Vec<f32> = self.open_levels.iter().copied().collect();
        v.sort_by(f32::total_cmp);
        Some(v[v.len() / 2])
    }

    pub fn count(&self) -> i64 {
        self.count
    }

    /// When each blink counted so far began, oldest first (as many as [`Self::count`]).
    pub fn started_at(&self) -> &[i64] {
        &self.started
    }

    /// Blinks per minute since the first frame with eyes (0 before a full second has passed).
    pub fn rate_per_minute(&self, now: i64) -> f32 {
        let span = self.first_seen.map_or(0, |t| now - t);
        if span < 1000 {
            0.0
        } else {
            self.count as f32 / (span as f32 / 60_000.0)
        }
    }

    pub fn mean_duration_ms(&self) -> f32 {
        if self.count == 0 {
            0.0
        } else {
            self.blink_ms as f32 / self.count as f32
        }
    }

    /// Share of observed time with the eyes closed.
    pub fn perclos(&self) -> f32 {
        if self.observed_ms == 0 {
            0.0
        } else {
            self.closed_ms as f32 / self.observed_ms as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds ratios at 30 fps and returns the blinks seen.
    fn feed(ratios: &[f32]) -> (Vec<Blink>, BlinkTracker) {
        let mut t = BlinkTracker::default();
        let blinks = ratios
            .iter()
            .enumerate()
            .filter_map(|(i, r)| t.observe(i as i64 * 33, Some(*r)).blink)
            .collect();
        (blinks, t)
    }

    #[test]
    fn a_three_frame_closure_is_one_blink_of_about_100_ms() {
        let mut r = vec![0.31; 40];
        r[26] = 0.15;
        r[27] = 0.06;
        r[28] = 0.12;
        let (blinks, t) = feed(&r);
        assert_eq!(
            blinks,
            vec![Blink {
                started_at: 26 * 33,
                duration_ms: 99
            }]
        );
        assert!(t.perclos() > 0.05 && t.perclos() < 0.1, "{}", t.perclos());
    }

    #[test]
    fn every_counted_blink_keeps_its_start_and_long_closures_add_none() {
        let mut r = vec![0.31; 120];
        r[20] = 0.05;
        r[50..70].fill(0.05); // 660 ms shut: not a blink
        r[90..92].fill(0.05);
        let (blinks, t) = feed(&r);
        assert_eq!(t.count(), 2);
        assert_eq!(t.started_at(), [20 * 33, 90 * 33]);
        assert_eq!(
            t.started_at(),
            blinks.iter().map(|b| b.started_at).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_threshold_follows_the_persons_own_open_level() {
        // Narrow eyes: open at 0.18; a fixed 0.2 threshold would call every frame a closure.
        let mut r = vec![0.18; 40];
        r[20] = 0.05;
        let (blinks, _) = feed(&r);
        assert_eq!(blinks.len(), 1);
    }

    #[test]
    fn noise_and_long_closures_are_not_blinks() {
        let r: Vec<f32> = (0..60)
            .map(|i| 0.3 + 0.02 * ((i % 3) as f32 - 1.0))
            .collect();
        assert!(
            feed(&r).0.is_empty(),
            "jitter of a few percent is not a blink"
        );
        let mut r = vec![0.3; 60];
        r[10..40].fill(0.05); // a second with the eyes shut
        let (blinks, t) = feed(&r);
        assert!(blinks.is_empty());
        assert!(t.perclos() > 0.4);
    }

    #[test]
    fn frames_without_eyes_end_a_closure_without_a_blink() {
        let mut t = BlinkTracker::default();
        for i in 0..10 {
            t.observe(i * 33, Some(0.3));
        }
        t.observe(330, Some(0.05));
        t.observe(363, None);
        assert_eq!(t.observe(396, Some(0.3)).blink, None);
    }
}
