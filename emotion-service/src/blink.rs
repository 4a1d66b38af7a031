//! Blinks and long closures over time from the eye aspect ratio of successive frames of one
//! session.
//!
//! The eyes count as closed when the ratio drops under 60% of the person's own open-eye level
//! (the running median of recent open frames), since the open level differs between people and
//! landmarkers, and open again only above 70% of it: between the two the eyes keep the state they
//! had, so a ratio hovering at the threshold (eyes half shut, looking down) is one closure, not a
//! string of them. A closure ends when the eyes are open and stay open for [`MIN_OPEN_MS`]; one
//! that reopens for less is the same closure going on. A closure that ends within 30-500 ms is a
//! blink; a longer one is a long closure (eyes shut, or looking down), its own signal, never one
//! or several blinks. Both count towards PERCLOS (the share of time the eyes are closed).

use std::collections::VecDeque;

/// Share of the open-eye level under which the eyes count as closed.
pub const CLOSED_RATIO: f32 = 0.6;
/// Share of the open-eye level above which closed eyes count as open again: the gap to
/// [`CLOSED_RATIO`] keeps landmark jitter at the threshold from opening and closing the eyes.
pub const OPEN_RATIO: f32 = 0.7;
/// The least open-eye level assumed, whatever the frames so far say: a session that starts with
/// the eyes half shut (looking down, crying) would otherwise learn that as "open" and read its
/// own closure as flickers of open and shut. Open eyes read 0.25-0.37 with the iris model's
/// eyelids (`emotion-service/evaluation`), closed ones under 0.1; so under 0.13 is closed for
/// anyone.
pub const MIN_OPEN_LEVEL: f32 = 0.22;
/// Open frames remembered for the running median (~3 s at 30 fps).
const HISTORY: usize = 90;
/// Blinks last roughly 100-400 ms; anything from one frame to half a second counts.
pub const BLINK_MS: (i64, i64) = (30, 500);
/// How long the eyes must stay open for a closure to be over: a blink is a closure between open
/// eyes, and a glimpse shorter than this inside a long closure (a flicker of the landmarks) does
/// not split it. At 5 frames per second it takes two open frames.
pub const MIN_OPEN_MS: i64 = 100;
/// Longer gaps between frames are not attributed to either state.
const MAX_GAP_MS: i64 = 1000;

/// A completed closure of the eyes: a blink or a long closure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closure {
    pub started_at: i64,
    pub duration_ms: i64,
}

impl Closure {
    /// A short closure between open eyes.
    pub fn is_blink(self) -> bool {
        (BLINK_MS.0..=BLINK_MS.1).contains(&self.duration_ms)
    }

    /// Longer than any blink: eyes shut, or looking down.
    pub fn is_long(self) -> bool {
        self.duration_ms > BLINK_MS.1
    }
}

/// Where the eyes are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Eyes {
    #[default]
    Open,
    Closed {
        since: i64,
    },
    /// Open again at `at`, not yet for [`MIN_OPEN_MS`]: the closure since `since` may go on.
    Reopened {
        since: i64,
        at: i64,
    },
}

#[derive(Debug, Clone, Default)]
pub struct BlinkTracker {
    open_levels: VecDeque<f32>,
    eyes: Eyes,
    last_seen: Option<i64>,
    closed_ms: i64,
    observed_ms: i64,
    blink_ms: i64,
    first_seen: Option<i64>,
    /// When each counted blink began, oldest first: clients read them beside the count.
    started: Vec<i64>,
    long_closures: i64,
}

/// What one observation says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    pub closed: bool,
    /// A closure whose end this frame confirmed.
    pub closure: Option<Closure>,
}

impl Observation {
    /// The blink this frame confirmed, if the closure that ended was one.
    pub fn blink(&self) -> Option<Closure> {
        self.closure.filter(|c| c.is_blink())
    }
}

impl BlinkTracker {
    /// Takes the next frame (in time order): its timestamp and eye aspect ratio, `None` without eyes.
    pub fn observe(&mut self, timestamp: i64, ratio: Option<f32>) -> Observation {
        let Some(ratio) = ratio else {
            // Eyes out of view: whatever they did meanwhile is unknown.
            self.eyes = Eyes::Open;
            self.last_seen = None;
            return Observation {
                closed: false,
                closure: None,
            };
        };
        self.first_seen.get_or_insert(timestamp);
        let gap = self
            .last_seen
            .map(|t| timestamp - t)
            .filter(|d| (0..=MAX_GAP_MS).contains(d));
        if gap.is_none() {
            self.eyes = Eyes::Open;
        }
        let previous = self.last_seen.replace(timestamp);
        let level = self.open_level().unwrap_or(ratio).max(MIN_OPEN_LEVEL);
        let shut = ratio < CLOSED_RATIO * level;
        let open = ratio >= OPEN_RATIO * level;
        let mut ended = None;
        self.eyes = match self.eyes {
            Eyes::Open if shut => Eyes::Closed { since: timestamp },
            Eyes::Open => Eyes::Open,
            Eyes::Closed { since } if open => Eyes::Reopened {
                since,
                at: timestamp,
            },
            Eyes::Closed { since } => Eyes::Closed { since },
            Eyes::Reopened { since, at } if shut => {
                // The glimpse open was part of the closure: its time was closed time too.
                self.closed_ms += previous.map_or(0, |p| p - at);
                Eyes::Closed { since }
            }
            Eyes::Reopened { since, at } if timestamp - at >= MIN_OPEN_MS => {
                ended = Some(Closure {
                    started_at: since,
                    duration_ms: at - since,
                });
                Eyes::Open
            }
            reopened @ Eyes::Reopened { .. } => reopened,
        };
        let closed = matches!(self.eyes, Eyes::Closed { .. });
        if let Some(gap) = gap {
            self.observed_ms += gap;
            if closed {
                self.closed_ms += gap;
            }
        }
        if self.eyes == Eyes::Open && !shut {
            self.open_levels.push_back(ratio);
            if self.open_levels.len() > HISTORY {
                self.open_levels.pop_front();
            }
        }
        if let Some(c) = ended {
            if c.is_blink() {
                self.blink_ms += c.duration_ms;
                self.started.push(c.started_at);
            } else if c.is_long() {
                self.long_closures += 1;
            }
        }
        Observation {
            closed,
            closure: ended.filter(|c| c.is_blink() || c.is_long()),
        }
    }

    /// When the closure the eyes are in now began, if they are closed (or only just reopened).
    pub fn closed_since(&self) -> Option<i64> {
        match self.eyes {
            Eyes::Open => None,
            Eyes::Closed { since } | Eyes::Reopened { since, .. } => Some(since),
        }
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
        self.started.len() as i64
    }

    /// Closures longer than a blink so far.
    pub fn long_closures(&self) -> i64 {
        self.long_closures
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
            self.count() as f32 / (span as f32 / 60_000.0)
        }
    }

    pub fn mean_duration_ms(&self) -> f32 {
        if self.started.is_empty() {
            0.0
        } else {
            self.blink_ms as f32 / self.count() as f32
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
    fn feed(ratios: &[f32]) -> (Vec<Closure>, BlinkTracker) {
        let mut t = BlinkTracker::default();
        let blinks = ratios
            .iter()
            .enumerate()
            .filter_map(|(i, r)| t.observe(i as i64 * 33, Some(*r)).blink())
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
            vec![Closure {
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
    fn a_session_that_starts_with_the_eyes_half_shut_reads_one_long_closure() {
        // As the crying clip of the evaluation starts: eyes half shut (looking down), then shut
        // with flickers of half-open lids, then open for good.
        let mut r = vec![0.18; 15];
        r.extend([0.06; 60]);
        for _ in 0..3 {
            r.extend([0.13; 5]);
            r.extend([0.10; 3]);
        }
        r.extend([0.06; 20]);
        r.extend([0.33; 30]);
        let mut t = BlinkTracker::default();
        let closures: Vec<Closure> = r
            .iter()
            .enumerate()
            .filter_map(|(i, v)| t.observe(i as i64 * 33, Some(*v)).closure)
            .collect();
        assert_eq!(t.count(), 0, "{closures:?}");
        assert_eq!(closures.len(), 1, "{closures:?}");
        assert!(closures[0].is_long() && closures[0].started_at == 15 * 33);
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
        assert_eq!(t.observe(396, Some(0.3)).closure, None);
        assert_eq!(t.observe(429, Some(0.3)).closure, None);
        assert_eq!(t.observe(600, Some(0.3)).closure, None);
    }

    #[test]
    fn a_long_closure_with_flickers_is_one_long_closure_and_no_blink() {
        // Two seconds of eyes shut or looking down, the ratio hovering at the threshold and
        // flickering open for single frames: the kind of trace that used to read as several
        // blinks.
        let mut r = vec![0.3; 150];
        for (i, v) in r[30..90].iter_mut().enumerate() {
            *v = match i % 7 {
                0 => 0.26, // a one-frame glimpse open
                1 | 4 => 0.19,
                _ => 0.12,
            };
        }
        let (blinks, t) = feed(&r);
        assert!(blinks.is_empty(), "{blinks:?}");
        assert_eq!(t.count(), 0);
        assert_eq!(t.long_closures(), 1);
        assert!(t.perclos() > 0.3, "{}", t.perclos());
    }

    #[test]
    fn a_ratio_between_the_thresholds_keeps_the_eyes_as_they_were() {
        // Closed at 0.1, then half open at 0.2 (between 60% and 70% of 0.3) for over half a
        // second, then wide open: one long closure until the eyes are really open, not a
        // one-frame blink.
        let mut r = vec![0.3; 60];
        r[20] = 0.1;
        r[21..38].fill(0.2);
        let (blinks, t) = feed(&r);
        assert!(blinks.is_empty(), "{blinks:?}");
        assert_eq!((t.count(), t.long_closures()), (0, 1));
        let mut r = vec![0.3; 60];
        r[20] = 0.1;
        r[21..24].fill(0.2);
        let (blinks, _) = feed(&r);
        assert_eq!(
            blinks,
            vec![Closure {
                started_at: 20 * 33,
                duration_ms: 4 * 33
            }]
        );
    }

    #[test]
    fn at_five_frames_per_second_a_blink_needs_open_eyes_on_both_sides() {
        let mut t = BlinkTracker::default();
        let mut seen = Vec::new();
        let ratios = [
            0.3, 0.3, 0.3, 0.3, 0.05, 0.3, 0.05, 0.05, 0.05, 0.3, 0.3, 0.3,
        ];
        for (i, r) in ratios.iter().enumerate() {
            if let Some(c) = t.observe(i as i64 * 200, Some(*r)).closure {
                seen.push(c);
            }
        }
        // Closed at 800, open for one frame at 1000 (not yet 100 ms of open eyes confirmed
        // before closing again), shut until 1800: one closure of a second, not a blink.
        assert_eq!(
            seen,
            vec![Closure {
                started_at: 800,
                duration_ms: 1000
            }]
        );
        assert_eq!((t.count(), t.long_closures()), (0, 1));
    }
}
