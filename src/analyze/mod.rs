//! Analyzers: state over the messages protocol finders locate — STUN
//! transactions now; TURN allocations, ICE pairs, SIP dialogs and TLS sessions
//! build on the same pattern.  They run as pipeline sinks and never print.

pub mod all;
pub mod ice;
pub mod sip;
pub mod stun;
pub mod tls;
pub mod turn;

/// Which of a shard's items (TURN allocations, TLS connections) a report
/// can list when it lists the first N of the whole capture by flow id.
/// Each shard keeps the N lowest flow ids it has seen: an item ranked N or
/// beyond in its shard is ranked at least as far in the whole capture (a
/// rank only grows as items with lower ids appear), so it will not be
/// listed and may give up what only a listing shows.  Without N, every
/// item can be listed.  At the pipeline's barriers, [`FirstN::cap`] brings
/// the shards together to the N lowest of the whole pass, so a report keeps
/// about N items whole however many shards there are.
#[derive(Debug, Clone, Default)]
pub struct FirstN {
    n: Option<usize>,
    /// At most N flow ids, the lowest.
    kept: std::collections::BTreeSet<crate::flow::FlowId>,
    /// No id above this can be listed: N lower ones are kept across the
    /// shards ([`FirstN::cap`]).
    ceiling: Option<crate::flow::FlowId>,
}

impl FirstN {
    /// Keeps the first `n`.
    pub fn new(n: usize) -> Self {
        FirstN {
            n: Some(n),
            kept: Default::default(),
            ceiling: None,
        }
    }

    /// An empty one with the same N, for another shard.
    pub fn fork(&self) -> Self {
        FirstN {
            n: self.n,
            kept: Default::default(),
            ceiling: None,
        }
    }

    /// Brings the shards' ranks to the N lowest flow ids of the whole pass:
    /// returns, per shard, the ids it kept that are no longer among them,
    /// and from now on each shard turns away ids above the N-th lowest.  A
    /// kept id stays kept unless a lower one displaces it, so an id ranked
    /// out here is ranked out at the end too.  Called at a barrier, where
    /// every shard is at the same point of the capture, it gives the same
    /// result whatever the timing.
    pub fn cap<'a>(shards: impl Iterator<Item = &'a mut FirstN>) -> Vec<Vec<crate::flow::FlowId>> {
        let mut shards: Vec<&mut FirstN> = shards.collect();
        let n = shards.first().and_then(|s| s.n).unwrap_or(usize::MAX);
        let total: usize = shards.iter().map(|s| s.kept.len()).sum();
        if total <= n || n == 0 {
            return vec![Vec::new(); shards.len()];
        }
        let mut all: Vec<crate::flow::FlowId> =
            shards.iter().flat_map(|s| s.kept.iter().copied()).collect();
        let top = *all.select_nth_unstable(n - 1).1;
        shards
            .iter_mut()
            .map(|s| {
                s.ceiling = Some(s.ceiling.map_or(top, |c| c.min(top)));
                let out: Vec<crate::flow::FlowId> =
                    s.kept.iter().copied().filter(|&x| x > top).collect();
                s.kept.retain(|&x| x <= top);
                out
            })
            .collect()
    }

    /// [`FirstN::cap`] over the shards of a pass: `ranks` gives a shard's
    /// ranks, and `ranked_out` tells it which of its items can no longer be
    /// listed, so it gives up what only a listing shows.
    pub fn cap_shards<'a, T: 'a>(
        shards: impl Iterator<Item = &'a mut T>,
        ranks: impl Fn(&mut T) -> &mut FirstN,
        mut ranked_out: impl FnMut(&mut T, &[crate::flow::FlowId]),
    ) {
        let mut shards: Vec<&mut T> = shards.collect();
        let out = Self::cap(shards.iter_mut().map(|s| ranks(s)));
        for (s, ids) in shards.iter_mut().zip(out) {
            ranked_out(s, &ids);
        }
    }

    /// `flow` just became an item; returns the item that can no longer be
    /// listed because of it (`flow` itself, or one it displaced), if any.
    /// A flow admitted again (a second TURN allocation on one 5-tuple) keeps
    /// its place: it holds one of the N ranks, however many items it has.
    pub fn admit(&mut self, flow: crate::flow::FlowId) -> Option<crate::flow::FlowId> {
        let n = self.n?;
        if self.kept.contains(&flow) {
            None
        } else if self.ceiling.is_some_and(|c| flow > c) {
            Some(flow)
        } else if self.kept.len() < n {
            self.kept.insert(flow);
            None
        } else if self.kept.last().is_some_and(|&top| flow < top) {
            let top = self.kept.pop_last();
            self.kept.insert(flow);
            top
        } else {
            Some(flow)
        }
    }
}

/// Whether a stream finder has recognised its protocol in one direction of a
/// TCP connection.  A direction that shows nothing recognisable in its first
/// [`Recognition::GIVE_UP_AFTER`] bytes is left alone (TLS, media, another
/// protocol); a mid-stream capture still resynchronises within that.
#[derive(Debug, Default)]
pub struct Recognition {
    recognised: bool,
    unrecognised: usize,
    given_up: bool,
}

impl Recognition {
    /// Unrecognised bytes tolerated before giving up on a direction.
    pub const GIVE_UP_AFTER: usize = 4096;

    /// The protocol was seen in this direction.  Returns, on the first hit,
    /// the bytes skipped before it (junk, or a capture that started inside a
    /// message), so the finder can report them; 0 afterwards.
    pub fn hit(&mut self) -> usize {
        if self.recognised {
            return 0;
        }
        self.recognised = true;
        std::mem::take(&mut self.unrecognised)
    }

    /// True once the protocol was seen.
    pub fn recognised(&self) -> bool {
        self.recognised
    }

    /// True when the direction was given up.
    pub fn given_up(&self) -> bool {
        self.given_up
    }

    /// `n` bytes were skipped.  Returns true when they are junk inside a
    /// recognised stream (to be reported); before recognition they count
    /// towards giving up instead.
    pub fn skipped(&mut self, n: usize) -> bool {
        if self.recognised {
            return true;
        }
        self.unrecognised += n;
        if self.unrecognised > Self::GIVE_UP_AFTER {
            self.given_up = true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::{FirstN, Recognition};

    /// Flows arriving out of order: the ones given up are exactly those
    /// outside the lowest N, whatever the order, and without N none is.
    #[test]
    fn first_n_gives_up_all_but_the_lowest() {
        let mut f = FirstN::new(2);
        let out: Vec<Option<u32>> = [5, 9, 3, 7, 1, 4].iter().map(|&x| f.admit(x)).collect();
        assert_eq!(out, [None, None, Some(9), Some(7), Some(5), Some(4)]);
        assert_eq!(f.admit(1), None, "a flow admitted again keeps its rank");
        assert_eq!(f.admit(2), Some(3), "and does not hold two of the N");
        let mut other = f.fork();
        assert_eq!(other.admit(8), None, "a fork starts empty");
        let mut all = FirstN::default();
        assert!((0..100).all(|x| all.admit(x).is_none()));
    }

    /// Capped across shards, the ranks are the N lowest of the whole pass:
    /// the others are handed back per shard and turned away from then on,
    /// while a lower id still gets in; without N nothing is capped.
    #[test]
    fn cap_keeps_the_lowest_n_of_all_shards() {
        let mut a = FirstN::new(3);
        let mut b = a.fork();
        for x in [2, 8, 9] {
            assert_eq!(a.admit(x), None);
        }
        for x in [1, 5, 7] {
            assert_eq!(b.admit(x), None);
        }
        let out = FirstN::cap([&mut a, &mut b].into_iter());
        assert_eq!(
            out,
            [vec![8, 9], vec![7]],
            "1, 2 and 5 are the lowest three"
        );
        assert_eq!(a.admit(6), Some(6), "above the third lowest: turned away");
        assert_eq!(a.admit(3), None, "below it: kept");
        let out = FirstN::cap([&mut a, &mut b].into_iter());
        assert_eq!(out, [vec![], vec![5]], "now 1, 2 and 3");
        assert_eq!(b.admit(4), Some(4));
        let (mut x, mut y) = (FirstN::default(), FirstN::default());
        assert!((0..10).all(|i| x.admit(i).is_none() && y.admit(i + 10).is_none()));
        let out = FirstN::cap([&mut x, &mut y].into_iter());
        assert_eq!(out, [Vec::<u32>::new(), Vec::new()]);
    }

    #[test]
    fn gives_up_only_before_recognition() {
        let mut r = Recognition::default();
        assert!(!r.skipped(Recognition::GIVE_UP_AFTER));
        assert!(!r.given_up());
        assert!(!r.skipped(1));
        assert!(r.given_up());
        let mut r = Recognition::default();
        assert_eq!(r.hit(), 0);
        assert!(
            r.skipped(1_000_000),
            "junk inside a recognised stream is reported"
        );
        assert!(!r.given_up());
        let mut r = Recognition::default();
        r.skipped(13);
        assert_eq!(
            r.hit(),
            13,
            "bytes before the first hit are handed back once"
        );
        assert_eq!(r.hit(), 0);
    }
}
