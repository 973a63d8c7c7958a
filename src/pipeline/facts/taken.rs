//! The byte ranges of a text already claimed by a fact, so that a later pattern does not read
//! the same characters again ("March 5" is a date, not the count 5). Queried in O(log n): a
//! linear scan per query made `scan` quadratic, 30 of the 50 s a 1 MB article took.

use std::collections::BTreeMap;
use std::ops::Range;

#[derive(Debug, Default)]
pub(super) struct Taken {
    /// Start → the largest end of a range starting there.
    by_start: BTreeMap<usize, usize>,
    /// The longest range pushed: no range that overlaps a query starts further before it.
    max_len: usize,
}

impl Taken {
    pub(super) fn push(&mut self, r: Range<usize>) {
        self.max_len = self.max_len.max(r.len());
        let end = self.by_start.entry(r.start).or_insert(r.end);
        *end = (*end).max(r.end);
    }

    /// Whether `r` shares a byte with any range pushed.
    pub(super) fn overlaps(&self, r: &Range<usize>) -> bool {
        let from = r.start.saturating_sub(self.max_len);
        self.by_start
            .range(from..r.end)
            .any(|(&start, &end)| start < r.end && r.start < end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_any_shared_byte_whatever_the_order_of_pushes() {
        let mut taken = Taken::default();
        taken.push(50..60);
        taken.push(10..12);
        taken.push(30..45);
        for (query, expected) in [
            (12..30, false),
            (11..13, true),
            (44..46, true),
            (45..50, false),
            (59..70, true),
            (0..10, false),
            (20..100, true),
        ] {
            assert_eq!(taken.overlaps(&query), expected, "{query:?}");
        }
    }
}
