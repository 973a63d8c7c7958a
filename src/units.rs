//! Sizes as people read them. The one copy: ingest's size limit, `cache info` and
//! `models list` all print sizes through [`human_bytes`], so a limit and a usage figure are
//! always in the same units.

/// Binary units (KiB, MiB, ...), one decimal: `293 B`, `5.0 MiB`, `1.0 GiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_shown_in_binary_units_with_one_decimal() {
        assert_eq!(human_bytes(293), "293 B");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
        assert_eq!(human_bytes(298_000_000), "284.2 MiB");
        assert_eq!(human_bytes(1_117_320_736), "1.0 GiB");
    }
}
