//! TCP sequence-space arithmetic shared by the statistics tracker and the
//! reassembler: 32-bit sequence numbers are unwrapped into 64-bit stream
//! offsets, and missing ranges ("holes") below the highest byte seen are kept
//! in a small sorted list.

/// Unwraps a 32-bit sequence number to the 64-bit offset closest to `reference`
/// (the offset whose low 32 bits are `seq`), never below 0.
#[inline]
pub fn unwrap(seq: u32, base: u32, reference: u64) -> u64 {
    let rel = seq.wrapping_sub(base); // low 32 bits of the offset
    let diff = rel.wrapping_sub(reference as u32) as i32 as i64;
    let v = reference as i64 + diff;
    if v < 0 {
        0
    } else {
        v as u64
    }
}

/// Sorted, disjoint list of missing byte ranges `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holes {
    ranges: Vec<(u64, u64)>,
}

impl Holes {
    /// Adds a missing range at the top (it starts at or above every existing hole).
    pub fn push(&mut self, start: u64, end: u64) {
        if start < end {
            if let Some(last) = self.ranges.last_mut() {
                if last.1 == start {
                    last.1 = end;
                    return;
                }
            }
            self.ranges.push((start, end));
        }
    }

    /// Removes `[start, end)` from the holes; returns how many missing bytes it filled.
    pub fn fill(&mut self, start: u64, end: u64) -> u64 {
        if self.ranges.is_empty() || start >= end {
            return 0;
        }
        let mut filled = 0;
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len() + 1);
        for &(a, b) in &self.ranges {
            if b <= start || a >= end {
                out.push((a, b));
                continue;
            }
            filled += b.min(end) - a.max(start);
            if a < start {
                out.push((a, start));
            }
            if b > end {
                out.push((end, b));
            }
        }
        self.ranges = out;
        filled
    }

    /// Number of holes.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True when nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Removes and returns the lowest hole.
    pub fn pop_lowest(&mut self) -> Option<(u64, u64)> {
        if self.ranges.is_empty() {
            None
        } else {
            Some(self.ranges.remove(0))
        }
    }

    /// Total missing bytes.
    pub fn total(&self) -> u64 {
        self.ranges.iter().map(|(a, b)| b - a).sum()
    }

    /// The ranges, lowest first.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_across_wraparound() {
        let base = 0xFFFF_FF00;
        assert_eq!(unwrap(0xFFFF_FF00, base, 0), 0);
        assert_eq!(unwrap(0x0000_0010, base, 200), 0x110);
        // a little behind the reference
        assert_eq!(unwrap(0xFFFF_FF80, base, 0x110), 0x80);
        // never negative
        assert_eq!(unwrap(0xFFFF_FE00, base, 10), 0);
    }

    #[test]
    fn holes_fill_and_split() {
        let mut h = Holes::default();
        h.push(10, 20);
        h.push(30, 40);
        assert_eq!(h.fill(15, 35), 10);
        assert_eq!(h.ranges(), &[(10, 15), (35, 40)]);
        assert_eq!(h.total(), 10);
        assert_eq!(h.fill(0, 100), 10);
        assert!(h.is_empty());
    }
}
