//! Repacked weights on the kernel's transparent huge pages.
//!
//! Decoding reads every weight once per step: 0.9 GB of tiles for Qwen2.5-1.5B Q4_K_M. On 4 KiB
//! pages that is some 220,000 pages a step, far more than the TLB holds, so nearly every page
//! costs a page walk; on 2 MiB pages, 430. Linux backs anonymous memory with 2 MiB pages where
//! the region is advised for them and transparent huge pages are `madvise` (the default of
//! many distributions, this machine's) or `always`; with `never` the advice does nothing.
//! Tile weights are packed into fresh vectors at load, so the advice is given before their
//! pages are first written. In paired rounds over copies of an 8,960 × 1,536 Q4K weight
//! streamed from memory, one decode row ran 46–48 GMAC/s on huge pages against 41–49 (AVX-512)
//! and 55–59 against 54–56 (AVX2); 8 rows alike (AMD EPYC Zen 4, 2 threads, a busy VM;
//! scripts/bench/README.md, "Session 21").
//!
//! Why by hand: a `madvise` on a vector's own buffer is one call; the crates that wrap it
//! (`memmap2`, `region`) advise memory maps they own, not a `Vec`.

/// A vector of `count` copies of `value` whose memory is advised for transparent huge pages
/// before it is first written (`madvise(MADV_HUGEPAGE)`, Linux; elsewhere a plain vector).
pub(super) fn filled<T: Clone>(value: T, count: usize) -> Vec<T> {
    let mut v = advised(count);
    v.resize(count, value);
    v
}

/// `first`'s elements, then `second`'s, in a new vector advised as in [`filled`]: where two
/// repacked weights become one, the joined tiles stay on huge pages (growing `first` in place
/// may move it to memory that was never advised).
pub(super) fn joined<T>(first: Vec<T>, second: Vec<T>) -> Vec<T> {
    let mut v = advised(first.len() + second.len());
    v.extend(first);
    v.extend(second);
    v
}

/// An empty vector with room for `count` elements, that room advised for huge pages before
/// anything is written to it.
fn advised<T>(count: usize) -> Vec<T> {
    let v = Vec::with_capacity(count);
    advise(v.as_ptr() as *const u8, count * std::mem::size_of::<T>());
    v
}

/// Bytes of a transparent huge page on x86-64 and most of aarch64.
const HUGE_PAGE: usize = 2 << 20;

/// Advises the whole huge pages inside `len` bytes from `start` for huge pages.
fn advise(start: *const u8, len: usize) {
    #[cfg(target_os = "linux")]
    if let Some((begin, end)) = whole_huge_pages(start as usize, len) {
        // SAFETY: advice only, on memory this process owns (a vector's unused capacity).
        unsafe {
            libc::madvise(begin as *mut libc::c_void, end - begin, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (start, len);
}

/// The addresses `begin..end` of the whole huge pages inside `len` bytes from `start`, if any.
fn whole_huge_pages(start: usize, len: usize) -> Option<(usize, usize)> {
    let begin = start.next_multiple_of(HUGE_PAGE);
    let end = (start + len) / HUGE_PAGE * HUGE_PAGE;
    (end > begin).then_some((begin, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_vector_holds_count_copies_of_the_value() {
        let v = filled([7u8; 100], 50_000);
        assert_eq!(v.len(), 50_000);
        assert!(v.iter().all(|x| x == &[7u8; 100]));
    }

    #[test]
    fn a_joined_vector_holds_the_first_then_the_second() {
        assert_eq!(joined(vec![1, 2], vec![3]), vec![1, 2, 3]);
        assert_eq!(joined(Vec::<u8>::new(), vec![4]), vec![4]);
    }

    #[test]
    fn only_whole_huge_pages_inside_the_range_are_advised() {
        let mb = 1 << 20;
        assert_eq!(whole_huge_pages(mb, 4 * mb), Some((2 * mb, 4 * mb)));
        assert_eq!(whole_huge_pages(2 * mb, 4 * mb), Some((2 * mb, 6 * mb)));
        assert_eq!(whole_huge_pages(mb, 2 * mb), None);
        assert_eq!(whole_huge_pages(4096, 100), None);
    }
}
