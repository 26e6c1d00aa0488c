//! Per-direction TCP sequence analysis without keeping payload: what the
//! `flows` table reports (retransmissions, out-of-order segments, missing
//! bytes, keep-alives).
//!
//! Definitions (by bytes, since an offline capture may be one-sided and
//! timing-based guesses mislead on loopback and in DMZ captures):
//! - a segment that brings only bytes already seen is a **retransmission**
//!   (a keep-alive — one byte or none at `next - 1` — is counted apart);
//! - a segment that brings bytes that were missing below the highest byte seen
//!   is **out-of-order** (a late arrival, or the retransmission of a segment
//!   the capture never saw: the capture cannot tell them apart);
//! - bytes below the highest byte seen that never arrive are **missing**.
//!
//! Wireshark labels segments with timing heuristics instead, so its
//! `tcp.analysis.retransmission` / `out_of_order` counts may differ on the
//! same capture; the missing-byte total agrees with its "previous segment
//! not captured" gaps.

use super::seq::{unwrap, Holes};
use crate::packet::TcpFlags;

/// Holes tracked per direction before the oldest is written off as missing.
pub const MAX_HOLES: usize = 64;

/// Sequence analysis of one direction of a TCP connection.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    base: Option<u32>,
    /// Next expected offset (one past the highest byte seen).
    next: u64,
    holes: Holes,
    /// Segments that carried only bytes already seen.
    pub retransmissions: u64,
    /// Segments that filled a hole.
    pub out_of_order: u64,
    /// Keep-alive probes.
    pub keepalives: u64,
    /// Bytes written off as missing (holes that overflowed [`MAX_HOLES`]).
    written_off: u64,
    /// Payload bytes of new data (first copies only).
    pub new_bytes: u64,
}

impl SeqTracker {
    /// Feeds one segment of this direction.
    pub fn segment(&mut self, seq: u32, flags: TcpFlags, len: u32) {
        if flags.has(TcpFlags::SYN) {
            // The SYN takes one sequence number; data on a SYN (TFO) follows it.
            if self.base.is_none() {
                self.base = Some(seq);
                self.next = 1;
            }
            let off = unwrap(seq, self.base.unwrap_or(seq), self.next);
            self.data(off + 1, len);
            return;
        }
        let base = *self.base.get_or_insert(seq);
        let off = unwrap(seq, base, self.next);
        if len == 0 {
            return;
        }
        // keep-alive: one byte (or none) just below what was already sent
        if len <= 1 && off + 1 == self.next && self.holes.is_empty() {
            self.keepalives += 1;
            return;
        }
        self.data(off, len);
    }

    fn data(&mut self, off: u64, len: u32) {
        if len == 0 {
            return;
        }
        let end = off + len as u64;
        if off >= self.next {
            self.holes.push(self.next, off);
            if self.holes.len() > MAX_HOLES {
                if let Some((a, b)) = self.holes.pop_lowest() {
                    self.written_off += b - a;
                }
            }
            self.new_bytes += len as u64;
            self.next = end;
            return;
        }
        let below_end = end.min(self.next);
        let filled = self.holes.fill(off, below_end);
        if filled > 0 {
            self.out_of_order += 1;
        } else if end <= self.next {
            self.retransmissions += 1;
        }
        if end > self.next {
            self.new_bytes += end - self.next;
            self.next = end;
        }
        self.new_bytes += filled;
    }

    /// Bytes missing so far (holes below the highest byte seen).
    pub fn missing_bytes(&self) -> u64 {
        self.holes.total() + self.written_off
    }

    /// Number of distinct gaps still open (plus those written off).
    pub fn gaps(&self) -> usize {
        self.holes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TcpFlags = TcpFlags(TcpFlags::ACK);

    #[test]
    fn in_order_retransmission_and_hole() {
        let mut t = SeqTracker::default();
        t.segment(1000, TcpFlags(TcpFlags::SYN), 0);
        t.segment(1001, A, 100);
        t.segment(1001, A, 100); // retransmission
        t.segment(1201, A, 100); // 100 bytes missing
        assert_eq!(t.retransmissions, 1);
        assert_eq!(t.missing_bytes(), 100);
        t.segment(1101, A, 100); // fills the hole
        assert_eq!(t.out_of_order, 1);
        assert_eq!(t.missing_bytes(), 0);
        assert_eq!(t.new_bytes, 300);
    }

    #[test]
    fn keepalive_is_not_a_retransmission() {
        let mut t = SeqTracker::default();
        t.segment(5000, A, 10);
        t.segment(5009, A, 1);
        assert_eq!(t.keepalives, 1);
        assert_eq!(t.retransmissions, 0);
    }

    #[test]
    fn wraparound_is_seamless() {
        let mut t = SeqTracker::default();
        t.segment(u32::MAX - 49, A, 100);
        t.segment(50, A, 100);
        assert_eq!(t.missing_bytes(), 0);
        assert_eq!(t.new_bytes, 200);
    }
}
