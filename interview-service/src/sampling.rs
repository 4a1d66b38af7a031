//! Past capacity a candidate's frames are sampled, not queued: the socket keeps one frame in
//! analysis and only the newest one waiting, so a frame that arrives while another waits replaces
//! it, and a frame the emotion service sheds is simply not analysed. Feedback stays current
//! instead of falling further behind, and the share analysed follows the backlog by itself.
//!
//! [`Sampler`] measures that share over short windows and says when the candidate should be told
//! (sampling began, changed or ended) and what frame rate would be enough.

use serde::Serialize;

/// Length of one measuring window: about fifteen frames at 5 frames/s, enough to measure a share,
/// short enough that the candidate hears of a change within seconds.
pub const WINDOW_MS: i64 = 3_000;
/// Below this share analysed, frames are being sampled; one frame in ten lost to chance (a
/// reply that crossed the next frame) is not worth telling anyone about.
const SAMPLED_BELOW: f32 = 0.8;
/// At or above this share, sampling is over. The gap to [`SAMPLED_BELOW`] keeps a share near
/// the line from flipping the status every window.
const RECOVERED_AT: f32 = 0.95;
/// The lowest rate ever suggested: attention and blink figures need about one frame a second.
const MIN_SUGGESTED_FPS: f32 = 1.0;

/// What the candidate is told while their frames are sampled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Sampling {
    /// About one frame in `every` is analysed.
    pub every: u32,
    /// A frame rate the server keeps up with now, in frames per second.
    pub suggested_fps: f32,
}

/// A change worth a status message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    Started(Sampling),
    Ended,
}

#[derive(Debug, Default)]
pub struct Sampler {
    window_start: Option<i64>,
    offered: u32,
    analysed: u32,
    current: Option<Sampling>,
}

impl Sampler {
    /// Sampling now in force, if any.
    pub fn current(&self) -> Option<Sampling> {
        self.current
    }

    /// A frame arrived at `now` (milliseconds).
    pub fn offered(&mut self, now: i64) -> Option<Change> {
        let change = self.roll(now);
        self.offered += 1;
        change
    }

    /// A frame was analysed (or kept to be analysed later).
    pub fn analysed(&mut self) {
        self.analysed += 1;
    }

    /// Closes the window once it is over and decides whether the candidate should hear of it.
    fn roll(&mut self, now: i64) -> Option<Change> {
        let start = *self.window_start.get_or_insert(now);
        let elapsed = now - start;
        if elapsed < WINDOW_MS {
            return None;
        }
        let (offered, analysed) = (self.offered.max(1), self.analysed.min(self.offered));
        self.window_start = Some(now);
        self.offered = 0;
        self.analysed = 0;
        let share = analysed as f32 / offered as f32;
        let next = if share < SAMPLED_BELOW {
            let every = (offered as f32 / analysed.max(1) as f32).round() as u32;
            let rate = analysed as f32 * 1000.0 / elapsed as f32;
            Some(Sampling {
                every: every.max(2),
                // Half-frames per second, rounded down: a rate that is kept up with.
                suggested_fps: ((rate * 2.0).floor() / 2.0).max(MIN_SUGGESTED_FPS),
            })
        } else if share >= RECOVERED_AT {
            None
        } else {
            self.current
        };
        let change = match (self.current, next) {
            (None, Some(s)) => Some(Change::Started(s)),
            (Some(old), Some(new)) if old.every != new.every => Some(Change::Started(new)),
            (Some(_), None) => Some(Change::Ended),
            _ => None,
        };
        self.current = next;
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays `seconds` of frames at `fps` from `from` ms, analysing frame `i` when `kept(i)`.
    fn play(
        s: &mut Sampler,
        from: i64,
        seconds: i64,
        fps: i64,
        kept: impl Fn(i64) -> bool,
    ) -> Vec<Change> {
        let mut changes = Vec::new();
        for i in 0..seconds * fps {
            changes.extend(s.offered(from + i * 1000 / fps));
            if kept(i) {
                s.analysed();
            }
        }
        changes
    }

    fn one_in(k: i64) -> impl Fn(i64) -> bool {
        move |i| i % k == 0
    }

    /// Every frame but one in `k`.
    fn all_but_one_in(k: i64) -> impl Fn(i64) -> bool {
        move |i| i % k != 0
    }

    #[test]
    fn every_frame_analysed_says_nothing() {
        let mut s = Sampler::default();
        assert!(play(&mut s, 0, 20, 5, one_in(1)).is_empty());
        assert_eq!(s.current(), None);
    }

    #[test]
    fn sampling_is_told_once_with_a_rate_that_is_kept_up_with_and_its_end_once() {
        let mut s = Sampler::default();
        let changes = play(&mut s, 0, 9, 10, one_in(3));
        assert_eq!(
            changes,
            [Change::Started(Sampling {
                every: 3,
                suggested_fps: 3.0
            })],
            "told once, not every window"
        );
        assert_eq!(play(&mut s, 9_000, 9, 10, one_in(1)), [Change::Ended]);
        assert_eq!(s.current(), None);
    }

    #[test]
    fn a_share_between_the_lines_keeps_the_state_it_had() {
        // One frame in nine lost (a share of 0.89) does not start sampling...
        let mut s = Sampler::default();
        assert!(play(&mut s, 0, 12, 9, all_but_one_in(9)).is_empty());
        // ...nor end it once started: after the window that started it, nothing more is said.
        let mut s = Sampler::default();
        assert!(
            play(&mut s, 0, 3, 10, one_in(4)).is_empty(),
            "still measuring"
        );
        let changes = play(&mut s, 3_000, 12, 9, all_but_one_in(9));
        assert!(
            matches!(changes[..], [Change::Started(Sampling { every: 4, .. })]),
            "{changes:?}"
        );
        assert!(s.current().is_some());
    }

    #[test]
    fn the_suggested_rate_never_drops_below_one_frame_a_second() {
        let mut s = Sampler::default();
        play(&mut s, 0, 7, 5, one_in(50));
        assert_eq!(s.current().unwrap().suggested_fps, MIN_SUGGESTED_FPS);
    }
}
