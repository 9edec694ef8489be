//! Proactive rate pacing: a client spaces its requests so that HubSpot's rolling-window limit
//! is (almost) never hit, whichever of its threads sends them.
//!
//! The pacer keeps the times of the requests this client sent (or is about to send) and knows
//! the limits: one given explicitly, and the one HubSpot states in its
//! `X-HubSpot-RateLimit-Max` / `-Interval-Milliseconds` headers (and the legacy `-Secondly`).
//! Before each request, [`Pacer::reserve`] says how long to wait so that no window holds more
//! requests than its limit. When HubSpot reports fewer requests remaining than this client
//! alone accounts for (another program shares the app's limit), the difference is counted too.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest and longest rate windows believed from HubSpot's headers: HubSpot's are 1 s
/// and 10 s; an answer announcing a window of weeks (`Interval-Milliseconds: 4294967295`) or of
/// no time at all would make the client wait for ever or never.
pub(crate) const SHORTEST_WINDOW: Duration = Duration::from_millis(100);
pub(crate) const LONGEST_WINDOW: Duration = Duration::from_secs(60);

/// A limit: at most `max` requests in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    pub window: Duration,
}

impl Limit {
    /// A sent request still counts this much longer than the window: the server saw it a
    /// little after it was sent (a slot is moved to its estimated arrival once answered, so
    /// this covers only the error of that estimate).
    fn margin(self) -> Duration {
        (self.window / 100).max(Duration::from_millis(20))
    }
}

/// What HubSpot said about its limits in one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    pub(crate) max: Option<u32>,
    pub(crate) remaining: Option<u32>,
    pub(crate) interval: Option<Duration>,
    pub(crate) secondly: Option<u32>,
}

#[derive(Debug, Default)]
struct State {
    learned: Option<Limit>,
    secondly: Option<Limit>,
    /// When requests reached (or will reach) HubSpot, as far as this client can tell, oldest
    /// first; may hold reservations in the near future.
    sent: VecDeque<Instant>,
    /// The shortest round trip seen of each weight of request (light reads, writes): what an
    /// answer takes without waiting in a queue.
    min_rtt: [Option<Duration>; 2],
    /// The part of each limit this client takes (1 when nothing else has shown up): halved by
    /// a 429 that pacing did not prevent (other programs share the app's limit), grown back by
    /// one request per window of answers, as TCP shares a link.
    share: Option<f64>,
    /// When the share was last halved: the 429s of one burst halve it once.
    cut_at: Option<Instant>,
    /// Others share the limit (a 429 came although the client paced itself, or HubSpot counted
    /// clearly more requests than it sent): from then on it sends in small bursts (an eighth of
    /// a limit per eighth of its window), so that programs that share the limit, each seeing
    /// room, do not all fill it at once.
    others_seen: bool,
    /// Answers stating a limit still to see, each showing nobody else, before this client
    /// takes the whole limit (see [`PROBE_SHARE`]); None once it has.
    probe: Option<u8>,
    /// When the probe ends at the latest: an eighth of the window after the answer that first
    /// stated the limit.
    probe_until: Option<Instant>,
    /// HubSpot's headers have stated a limit.
    heard: bool,
    /// Since when answers have shown nobody but this client using the limit, after others
    /// were seen: the whole limit comes back once that has lasted a window.
    quiet_since: Option<Instant>,
}

/// The part of a limit a client takes from when HubSpot's headers first state it until two
/// answers have shown nobody else using it, and for at most an eighth of the window after the
/// first: programs started together (Airflow tasks, a job's partitions) each see an empty
/// window at first, and would otherwise all fill it at once. Where answers come quickly the
/// others show up within that eighth; where they take a good part of the window, the probe
/// costs that eighth at most.
const PROBE_SHARE: f64 = 0.5;
const PROBE_ANSWERS: u8 = 2;

/// What a request asks of HubSpot, which counts it when it arrives and then takes the time
/// the request needs: a light read (the property definitions, the account details) answers in
/// about the network's round trip, a write (a batch upsert, a record read) in that and however
/// long HubSpot works on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Weight {
    Light = 0,
    Write = 1,
}

#[derive(Debug, Default)]
pub(crate) struct Pacer {
    explicit: Option<Limit>,
    state: Mutex<State>,
}

impl Pacer {
    pub(crate) fn new(explicit: Option<Limit>) -> Self {
        Pacer {
            explicit,
            state: Mutex::default(),
        }
    }

    /// Paces by `limit` until HubSpot's headers state one.
    pub(crate) fn assuming(self, limit: Limit) -> Self {
        self.lock().learned = Some(limit);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// HubSpot's limits and the explicit one, as stated.
    fn stated(&self, state: &State) -> impl Iterator<Item = Limit> {
        [self.explicit, state.learned, state.secondly]
            .into_iter()
            .flatten()
    }

    /// The limits this client paces by: its share of each, and in small bursts once others
    /// have shown up.
    fn limits(&self, state: &State) -> impl Iterator<Item = Limit> {
        let share = state.share.unwrap_or(1.0);
        let own = self.stated(state).map(move |l| Limit {
            max: ((l.max as f64 * share) as u32).max(1),
            window: l.window,
        });
        let bursts = self
            .stated(state)
            .min_by_key(|l| l.max)
            .filter(|_| state.others_seen)
            .map(|l| Limit {
                max: ((l.max as f64 * share / 8.0) as u32).max(1),
                window: l.window / 8,
            });
        own.chain(bursts)
    }

    /// A 429 came although the client paced itself: others use the same limit. Halves this
    /// client's share of it, once per half window.
    pub(crate) fn throttled(&self, now: Instant) {
        let mut state = self.lock();
        let Some(tightest) = self.stated(&state).min_by_key(|l| l.max) else {
            return;
        };
        if state
            .cut_at
            .is_some_and(|at| now.saturating_duration_since(at) < tightest.window / 2)
        {
            return;
        }
        let floor = 1.0 / tightest.max.max(1) as f64;
        state.share = Some((state.share.unwrap_or(1.0) / 2.0).max(floor));
        state.cut_at = Some(now);
        state.others_seen = true;
        state.probe = None;
        state.probe_until = None;
        state.quiet_since = None;
    }

    /// A request went through: the share grows back by about a sixteenth of the limit per
    /// window.
    pub(crate) fn succeeded(&self) {
        let mut state = self.lock();
        let (Some(share), Some(tightest)) =
            (state.share, self.stated(&state).min_by_key(|l| l.max))
        else {
            return;
        };
        // A sixteenth of the limit per window's worth of answers (at least one request): a
        // share cut while many programs ran grows back within a few windows once they finish.
        let own = share * tightest.max as f64;
        let step = (tightest.max as f64 / 16.0).max(1.0);
        let grown = (own + step / own.max(1.0)) / tightest.max as f64;
        state.share = (grown < 1.0).then_some(grown);
    }

    /// The earliest moment at or after `now` when one more request fits every limit.
    fn earliest(&self, state: &State, now: Instant) -> Instant {
        let mut at = now;
        for limit in self.limits(state) {
            let hold = limit.window + limit.margin();
            // Requests that still count at `at`: those sent after `at - hold`.
            let counting: Vec<Instant> = state
                .sent
                .iter()
                .copied()
                .filter(|t| *t + hold > at)
                .collect();
            let max = limit.max.max(1) as usize;
            if counting.len() >= max {
                // Room opens when the oldest `len - max + 1` of them have left the window.
                let opens = counting[counting.len() - max] + hold;
                at = at.max(opens);
            }
        }
        at
    }

    /// The earliest moment at or after `now` when one more request fits, after forgetting
    /// the requests that no window counts any more.
    fn room_at(&self, state: &mut State, now: Instant) -> Instant {
        if state.probe_until.is_some_and(|until| now >= until) {
            Self::end_probe(state);
        }
        // With no limit known yet slots are still recorded: the first answer may state one.
        // Kept two windows: an answer's headers describe the window when its request arrived,
        // up to a latency ago, and are compared with the slots as they were then.
        let longest = self
            .limits(state)
            .map(|l| l.window + l.margin())
            .max()
            .unwrap_or(Duration::from_secs(10));
        while state.sent.front().is_some_and(|t| *t + 2 * longest <= now) {
            state.sent.pop_front();
        }
        let at = self.earliest(state, now);
        match state.probe_until {
            // Room that opens only after the probe has ended opens as the whole limit allows.
            Some(until) if at > until && !state.others_seen => {
                let probing = state.share.take();
                let after = self.earliest(state, until);
                state.share = probing;
                at.min(after)
            }
            _ => at,
        }
    }

    fn insert(state: &mut State, at: Instant) {
        let pos = state.sent.partition_point(|t| *t <= at);
        state.sent.insert(pos, at);
    }

    /// Reserves a slot for one request: returns how long to wait before sending it, and the
    /// moment the slot is at.
    pub(crate) fn reserve(&self, now: Instant) -> (Duration, Instant) {
        let mut state = self.lock();
        let at = self.room_at(&mut state, now);
        Self::insert(&mut state, at);
        (at - now, at)
    }

    /// Reserves a slot for a request sent now, if one fits every limit; else says how long
    /// until one does (reserving nothing).
    pub(crate) fn try_reserve(&self, now: Instant) -> Result<Instant, Duration> {
        let mut state = self.lock();
        let at = self.room_at(&mut state, now);
        if at > now {
            return Err(at - now);
        }
        Self::insert(&mut state, now);
        Ok(now)
    }

    /// Moves the slot of a request sent at `sent` and answered at `answered` to when it most
    /// likely reached HubSpot, which counts it on arrival and only then works on it. A round
    /// trip longer than the shortest one seen of the same weight is taken to have waited before
    /// it arrived (in a queue on the way, or at a busy server): counting from the send alone
    /// would let the window roll over early and draw 429s. Writes are compared with writes
    /// only: the time HubSpot takes on one is spent after counting it, and a light read's
    /// quick answer says nothing of it. Returns that moment: when HubSpot counted the request,
    /// and computed the rate-limit headers of its answer.
    pub(crate) fn settle(
        &self,
        slot: Instant,
        sent: Instant,
        answered: Instant,
        weight: Weight,
    ) -> Instant {
        let mut state = self.lock();
        let rtt = answered.saturating_duration_since(sent);
        let seen = &mut state.min_rtt[weight as usize];
        let fastest = seen.map_or(rtt, |m| m.min(rtt));
        *seen = Some(fastest);
        let arrived = sent + (rtt - fastest);
        if arrived <= slot {
            return arrived;
        }
        let pos = state.sent.partition_point(|t| *t < slot);
        if state.sent.get(pos) == Some(&slot) {
            state.sent.remove(pos);
            Self::insert(&mut state, arrived);
        }
        arrived
    }

    /// Gives back the slot `reserve` took for a request that will not be sent.
    pub(crate) fn cancel(&self, slot: Instant) {
        let mut state = self.lock();
        let pos = state.sent.partition_point(|t| *t < slot);
        if state.sent.get(pos) == Some(&slot) {
            state.sent.remove(pos);
        }
    }

    /// The length of the window paced by (the tightest limit's), 10 s when none is known.
    pub(crate) fn window(&self) -> Duration {
        self.known_limit()
            .map_or(Duration::from_secs(10), |l| l.window)
    }

    /// How long until the window has room again: the wait after a 429 without `Retry-After`.
    pub(crate) fn until_room(&self, now: Instant) -> Duration {
        let state = self.lock();
        match self.limits(&state).map(|l| l.window).max() {
            None => Duration::from_secs(10),
            Some(_) => self.earliest(&state, now) - now,
        }
    }

    /// Learns from an answer's rate-limit headers, which describe the window when the request
    /// arrived (`arrived`), not when its answer did (`answered`: a slow answer's headers are old
    /// news). Requests of others are counted only beyond every request of this client that may
    /// have been counted then: any sent before the answer, whose arrival order is unknown.
    pub(crate) fn observe(&self, arrived: Instant, answered: Instant, headers: RateHeaders) {
        let now = arrived;
        let mut state = self.lock();
        if let Some(max) = headers.max {
            let window = headers
                .interval
                .unwrap_or(Duration::from_secs(10))
                .clamp(SHORTEST_WINDOW, LONGEST_WINDOW);
            state.learned = Some(Limit { max, window });
            let first = !state.heard;
            if first {
                state.heard = true;
                state.probe = Some(PROBE_ANSWERS);
                state.probe_until = Some(answered + window / 8);
                state.share = Some(state.share.unwrap_or(1.0).min(PROBE_SHARE));
            } else if headers.remaining.is_none() {
                Self::probed(&mut state);
            }
            // The answer that states the limit first does not count: it came before others
            // could show up.
            if let Some(remaining) = headers.remaining {
                let hold = window + Limit { max, window }.margin();
                let ours = state
                    .sent
                    .iter()
                    .filter(|t| **t <= answered && **t + hold > now)
                    .count();
                let used = max.saturating_sub(remaining) as usize;
                // Others share this app's limit: count their requests as sent now. More than a
                // stray one or two (a request's arrival is only estimated) also means small
                // bursts from now on.
                let slack = (max as usize / 50).max(2);
                // While probing, any request beyond this client's is someone else's: a client
                // started beside this one has sent one or two so far.
                let probing = state.probe.is_some() && !first;
                let others = used > ours + slack || (probing && used > ours);
                // An answer tells whether anyone else used the window only if it counts about
                // every request this client sent before it: with many in flight, those sent
                // after it arrived are among `ours`, and a count below them says nothing.
                let telling = ours <= used + slack;
                if others {
                    // Others use the limit: the share is what the lines below make it.
                    state.probe = None;
                    state.probe_until = None;
                    state.quiet_since = None;
                }
                if others && !state.others_seen {
                    state.others_seen = true;
                    // When others first show up, take half the limit at most: their requests
                    // in the window are counted below besides, and a 429 would halve it again.
                    // The share grows back as answers come.
                    state.share = Some(state.share.unwrap_or(1.0).min(0.5));
                } else if used <= ours && telling && state.others_seen {
                    // An answer that counts every request this client sent and nobody else's.
                    // Where it comes just after the window rolled, the others may simply not
                    // have sent yet: only when answers have said so for a whole window have
                    // they finished, and the whole limit is this client's again (a 429 would
                    // halve it once more).
                    let since = *state.quiet_since.get_or_insert(answered);
                    if answered.saturating_duration_since(since) >= window {
                        state.others_seen = false;
                        state.share = None;
                        state.quiet_since = None;
                    }
                } else if !others && telling && !state.others_seen && !first {
                    Self::probed(&mut state);
                }
                for _ in ours..used {
                    let pos = state.sent.partition_point(|t| *t <= now);
                    state.sent.insert(pos, now);
                }
            }
        }
        if let Some(n) = headers.secondly {
            state.secondly = Some(Limit {
                max: n,
                window: Duration::from_secs(1),
            });
        }
    }

    /// One more answer showed nobody else: after enough, the whole limit is this client's.
    fn probed(state: &mut State) {
        if let Some(left) = state.probe {
            state.probe = left.checked_sub(1).filter(|n| *n > 0);
            if state.probe.is_none() {
                Self::end_probe(state);
            }
        }
    }

    fn end_probe(state: &mut State) {
        state.probe = None;
        state.probe_until = None;
        if !state.others_seen {
            state.share = None;
        }
    }

    /// Whether writes take a good part of the rate window: the shortest write's round trip
    /// seen is a quarter of the tightest window or more. Then waiting for one answer before
    /// sending more leaves that part of the window's room unused.
    pub(crate) fn answers_are_slow(&self) -> bool {
        let Some(limit) = self.known_limit() else {
            return false;
        };
        let state = self.lock();
        state.min_rtt[Weight::Write as usize].is_some_and(|rtt| rtt >= limit.window / 4)
    }

    /// The limit this client paces itself by, if it knows one (the tightest).
    pub(crate) fn known_limit(&self) -> Option<Limit> {
        let state = self.lock();
        self.stated(&state).min_by(|a, b| {
            (a.max as f64 / a.window.as_secs_f64())
                .total_cmp(&(b.max as f64 / b.window.as_secs_f64()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn limit(max: u32, window_ms: u64) -> Limit {
        Limit {
            max,
            window: MS(window_ms),
        }
    }

    #[test]
    fn without_a_limit_nothing_waits() {
        let p = Pacer::new(None);
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(p.reserve(t).0, Duration::ZERO);
        }
        assert_eq!(p.until_room(t), Duration::from_secs(10));
    }

    #[test]
    fn explicit_limit_spaces_a_burst_by_windows() {
        let p = Pacer::new(Some(limit(3, 1000)));
        let t = Instant::now();
        let waits: Vec<Duration> = (0..7).map(|_| p.reserve(t).0).collect();
        // margin = max(20 ms, 1 % of 1 s) = 20 ms
        assert_eq!(
            waits,
            [MS(0), MS(0), MS(0), MS(1020), MS(1020), MS(1020), MS(2040)]
        );
    }

    #[test]
    fn slots_free_up_as_time_passes() {
        let p = Pacer::new(Some(limit(2, 1000)));
        let t = Instant::now();
        assert_eq!(p.reserve(t).0, MS(0));
        assert_eq!(p.reserve(t + MS(500)).0, MS(0));
        assert_eq!(p.reserve(t + MS(600)).0, MS(420));
        assert_eq!(p.reserve(t + MS(2000)).0, MS(0));
    }

    #[test]
    fn learns_the_limit_from_headers() {
        let p = Pacer::new(None);
        let t = Instant::now();
        assert_eq!(p.reserve(t).0, MS(0));
        p.observe(
            t,
            t,
            RateHeaders {
                max: Some(2),
                remaining: Some(1),
                interval: Some(MS(10_000)),
                secondly: None,
            },
        );
        assert_eq!(p.known_limit(), Some(limit(2, 10_000)));
        // Until answers show nobody else, half of it (one request of two), for an eighth of
        // the window at most.
        assert_eq!(p.reserve(t).0, MS(1_250));
        assert_eq!(p.reserve(t).0, MS(10_100));
    }

    #[test]
    fn a_limit_first_stated_is_taken_half_at_a_time_until_nobody_else_shows_up() {
        let headers = |remaining| RateHeaders {
            max: Some(20),
            remaining: Some(remaining),
            interval: Some(MS(1_000)),
            secondly: None,
        };
        let p = Pacer::new(None);
        let t = Instant::now();
        let first = p.reserve(t).1;
        p.observe(first, t, headers(19)); // the limit is stated: half of it
        let second = p.reserve(t).1;
        p.observe(second, t, headers(18)); // nobody else: one answer of two
        let burst: Vec<Duration> = (0..9).map(|_| p.reserve(t).0).collect();
        assert!(burst[..8].iter().all(|w| w.is_zero()), "{burst:?}");
        // The next waits for the probe's end at the latest.
        assert_eq!(burst[8], MS(125), "{burst:?}");
        p.cancel(t + burst[8]);
        // A second answer showing nobody else (it counts every request sent): the whole limit.
        p.observe(t, t, headers(10));
        let burst: Vec<Duration> = (0..11).map(|_| p.reserve(t).0).collect();
        assert!(burst[..10].iter().all(|w| w.is_zero()), "{burst:?}");
        assert!(burst[10] > MS(900), "{burst:?}");

        // Without that answer, an eighth of the window after the one that stated the limit.
        let p = Pacer::new(None);
        let first = p.reserve(t).1;
        p.observe(first, t, headers(19));
        let second = p.reserve(t).1;
        p.observe(second, t, headers(18));
        for _ in 0..8 {
            assert!(p.reserve(t).0.is_zero());
        }
        assert_eq!(p.reserve(t).0, MS(125));
        assert!(p.reserve(t + MS(125)).0.is_zero(), "the probe is over");

        // Started beside others, the probe ends in their share.
        let q = Pacer::new(None);
        let first = q.reserve(t).1;
        q.observe(first, t, headers(19));
        // 12 used, 1 of them this client's: others are there, its share stays at half and
        // their requests count, so nothing more fits in this window.
        q.observe(t, t, headers(8));
        assert!(q.reserve(t).0 > MS(900));
        assert!(
            q.reserve(t + MS(200)).0 > MS(700),
            "no end of the probe frees it"
        );
    }

    #[test]
    fn counts_requests_of_others_sharing_the_app() {
        let p = Pacer::new(None);
        let t = Instant::now();
        p.reserve(t);
        // HubSpot says 8 of 10 are used, of which this client sent 1.
        p.observe(
            t,
            t,
            RateHeaders {
                max: Some(10),
                remaining: Some(2),
                interval: Some(MS(1000)),
                secondly: None,
            },
        );
        // Others used 7 of the 8: this client takes half the limit at most, the others' 7
        // count as sent now, so nothing more fits until the window rolls; then its requests go
        // in small bursts, one per eighth of the window (125 ms, plus the 20 ms margin).
        let waits: Vec<Duration> = (0..3).map(|_| p.reserve(t).0).collect();
        assert_eq!(waits, [MS(1020), MS(1165), MS(1310)]);
    }

    #[test]
    fn the_whole_limit_comes_back_when_the_others_have_finished() {
        let p = Pacer::new(None);
        let t = Instant::now();
        let headers = |remaining| RateHeaders {
            max: Some(10),
            remaining: Some(remaining),
            interval: Some(MS(1000)),
            secondly: None,
        };
        p.reserve(t);
        p.observe(t, t, headers(2)); // others used 7
        assert_eq!(p.reserve(t).0, MS(1020));
        // Two windows later only this client's request counts: perhaps nobody else is left,
        // perhaps the others have not sent in this window yet.
        let later = t + MS(2500);
        let (_, slot) = p.reserve(later);
        p.observe(slot, slot, headers(9));
        let waits: Vec<Duration> = (0..8).map(|_| p.reserve(later).0).collect();
        assert!(waits.iter().any(|w| !w.is_zero()), "{waits:?}");
        for wait in waits {
            p.cancel(later + wait);
        }
        // A window on, answers still count this client's requests only: the others are done.
        let last = t + MS(3500);
        let (_, slot) = p.reserve(last);
        p.observe(slot, slot, headers(9));
        let waits: Vec<Duration> = (0..8).map(|_| p.reserve(last).0).collect();
        assert!(waits.iter().all(|w| w.is_zero()), "{waits:?}");
    }

    #[test]
    fn the_tightest_limit_wins() {
        let p = Pacer::new(Some(limit(100, 10_000)));
        let t = Instant::now();
        p.observe(
            t,
            t,
            RateHeaders {
                max: Some(190),
                remaining: None,
                interval: Some(MS(10_000)),
                secondly: Some(2),
            },
        );
        // Two answers more (with no count of requests remaining) end the first half-share.
        for _ in 0..2 {
            let stated = RateHeaders {
                max: Some(190),
                remaining: None,
                interval: Some(MS(10_000)),
                secondly: Some(2),
            };
            p.observe(t, t, stated);
        }
        assert_eq!(p.reserve(t).0, MS(0));
        assert_eq!(p.reserve(t).0, MS(0));
        assert_eq!(p.reserve(t).0, MS(1020));
        assert_eq!(p.known_limit(), Some(limit(2, 1000)));
    }

    #[test]
    fn try_reserve_takes_room_only_when_there_is_some() {
        let p = Pacer::new(Some(limit(2, 1000)));
        let t = Instant::now();
        assert_eq!(p.try_reserve(t), Ok(t));
        assert_eq!(p.try_reserve(t + MS(100)), Ok(t + MS(100)));
        assert_eq!(p.try_reserve(t + MS(200)), Err(MS(820)));
        // Asking reserved nothing: the room opens when the first request leaves the window.
        assert_eq!(p.try_reserve(t + MS(1020)), Ok(t + MS(1020)));
        assert_eq!(p.try_reserve(t + MS(1020)), Err(MS(100)));
    }

    #[test]
    fn a_slot_counts_from_when_the_request_most_likely_arrived() {
        let p = Pacer::new(Some(limit(1, 1000)));
        let t = Instant::now();
        // A first answer in 300 ms sets the shortest round trip: the slot stays where it was.
        let slot = p.try_reserve(t).unwrap();
        p.settle(slot, t, t + MS(300), Weight::Write);
        assert_eq!(p.try_reserve(t + MS(400)), Err(MS(620)));
        // One that took 500 ms longer than that waited on the way: it counts 500 ms later.
        let q = Pacer::new(Some(limit(1, 1000)));
        let slot = q.try_reserve(t).unwrap();
        q.settle(slot, t, t + MS(100), Weight::Write);
        let slot = q.try_reserve(t + MS(1100)).unwrap();
        q.settle(slot, t + MS(1100), t + MS(1700), Weight::Write);
        assert_eq!(q.try_reserve(t + MS(2200)), Err(MS(420)));
    }

    #[test]
    fn a_quick_light_read_does_not_move_the_slots_of_slow_writes() {
        // The definitions read answers in 20 ms; batch upserts take 1 s, spent after HubSpot
        // counted them: their slots stay at their sends, and the window rolls on time.
        let p = Pacer::new(Some(limit(2, 2000)));
        let t = Instant::now();
        let read = p.try_reserve(t).unwrap();
        p.settle(read, t, t + MS(20), Weight::Light);
        let write = p.try_reserve(t + MS(20)).unwrap();
        assert_eq!(p.try_reserve(t + MS(20)), Err(MS(2000)));
        assert_eq!(
            p.settle(write, t + MS(20), t + MS(1020), Weight::Write),
            t + MS(20)
        );
        assert_eq!(p.try_reserve(t + MS(2040)), Ok(t + MS(2040)));
        // A write that took 300 ms longer than the fastest write waited on the way.
        let late = p.try_reserve(t + MS(4100)).unwrap();
        let arrived = p.settle(late, t + MS(4100), t + MS(5400), Weight::Write);
        assert_eq!(arrived, t + MS(4400));
    }

    #[test]
    fn a_429_halves_the_share_and_answers_grow_it_back() {
        let p = Pacer::new(Some(limit(8, 1000)));
        let t = Instant::now();
        p.throttled(t);
        // The same burst halves it once; then half the limit, in small bursts (one per eighth
        // of the window).
        p.throttled(t + MS(100));
        let waits: Vec<Duration> = (0..5).map(|_| p.reserve(t + MS(200)).0).collect();
        assert_eq!(waits, [MS(0), MS(145), MS(290), MS(435), MS(1020)]);
        p.throttled(t + MS(700));
        assert_eq!(
            p.known_limit(),
            Some(limit(8, 1000)),
            "the stated limit is unchanged"
        );
        // Two requests a window now; each answer adds about half a request.
        for _ in 0..4 {
            p.succeeded();
        }
        // Halved to 2 of 8, then grown back by answers: over a window, more than 2 go again.
        let q = Pacer::new(Some(limit(8, 1000)));
        q.throttled(t);
        q.throttled(t + MS(600));
        for _ in 0..12 {
            q.succeeded();
        }
        let start = t + MS(5000);
        let sent = (0..100)
            .filter(|i| q.try_reserve(start + MS(i * 10)).is_ok())
            .count();
        assert!((3..8).contains(&sent), "{sent}");
    }

    #[test]
    fn absurd_windows_are_clamped_and_a_cancelled_slot_is_free_again() {
        let p = Pacer::new(None);
        let t = Instant::now();
        let headers = |ms: u32| RateHeaders {
            max: Some(1),
            remaining: Some(0),
            interval: Some(MS(ms.into())),
            secondly: None,
        };
        p.observe(t, t, headers(u32::MAX));
        assert_eq!(p.window(), LONGEST_WINDOW);
        p.observe(t, t, headers(0));
        assert_eq!(p.window(), SHORTEST_WINDOW);
        let q = Pacer::new(Some(limit(1, 1000)));
        let (_, slot) = q.reserve(t);
        assert_eq!(q.reserve(t).0, MS(1020));
        q.cancel(slot);
        q.cancel(t + MS(1020));
        assert_eq!(q.reserve(t).0, MS(0));
    }

    #[test]
    fn until_room_after_a_full_window() {
        let p = Pacer::new(Some(limit(1, 1000)));
        let t = Instant::now();
        p.reserve(t);
        assert_eq!(p.until_room(t + MS(300)), MS(720));
    }

    #[test]
    fn answers_are_slow_against_a_window_from_a_quarter_of_it() {
        let t = Instant::now();
        // No limit known, or no answer yet: not slow.
        let w = Weight::Write;
        let p = Pacer::new(None);
        p.settle(t, t, t + MS(900), w);
        assert!(!p.answers_are_slow());
        let q = Pacer::new(Some(limit(40, 2000)));
        assert!(!q.answers_are_slow());
        q.settle(t, t, t + MS(500), w);
        assert!(q.answers_are_slow());
        // A light read's quick answer says nothing of how long writes take.
        q.settle(t, t, t + MS(20), Weight::Light);
        assert!(q.answers_are_slow());
        let q2 = Pacer::new(Some(limit(40, 2000)));
        q2.settle(t, t, t + MS(499), w);
        assert!(!q2.answers_are_slow());
        // The shortest round trip counts: one fast write says HubSpot is not slow.
        q.settle(t, t, t + MS(100), w);
        assert!(!q.answers_are_slow());
        // A 10 s window: 1 s answers are not slow, 2.5 s ones are.
        let r = Pacer::new(Some(limit(190, 10_000)));
        r.settle(t, t, t + MS(1000), w);
        assert!(!r.answers_are_slow());
        let r = Pacer::new(Some(limit(190, 10_000)));
        r.settle(t, t, t + MS(2500), w);
        assert!(r.answers_are_slow());
    }
}
