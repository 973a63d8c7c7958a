//! Sizes and ages as people read and write them. The one copy: ingest's size limit, `cache
//! stats` and `models list` all print sizes through [`human_bytes`], so a limit and a usage
//! figure are always in the same units; every flag that takes an age parses it with
//! [`parse_age`].

use std::time::Duration;

/// Binary units (KiB, MiB, ...), one decimal: `293 B`, `5.0 MiB`, `1.0 GiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
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

/// Parses `30d`, `12h`, `90m`, `45s`, `2w`.
pub(crate) fn parse_age(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let usage =
        || format!("`{text}` is not an age: use a number and a unit, e.g. 30d, 12h, 90m, 2w");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| usage())?;
    let seconds_per_unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(usage()),
    };
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(usage)
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

    #[test]
    fn parse_age_understands_units_and_rejects_the_rest() {
        assert_eq!(parse_age("30d").unwrap(), Duration::from_secs(30 * 86_400));
        assert_eq!(parse_age("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(parse_age("90m").unwrap(), Duration::from_secs(90 * 60));
        assert_eq!(parse_age("2w").unwrap(), Duration::from_secs(14 * 86_400));
        assert_eq!(parse_age("0s").unwrap(), Duration::ZERO);
        for bad in [
            "30",
            "d",
            "30 days",
            "-1d",
            "1.5d",
            "99999999999999999999d",
            "",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }
}
