//! Analyzers: state over the messages protocol finders locate — STUN
//! transactions now; TURN allocations, ICE pairs, SIP dialogs and TLS sessions
//! build on the same pattern.  They run as pipeline sinks and never print.

pub mod all;
pub mod ice;
pub mod sip;
pub mod stun;
pub mod tls;
pub mod turn;

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
    use super::Recognition;

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
