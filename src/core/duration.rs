//! Human durations as users type them (`10m`, `2h30m`, `7d`), shared by command arguments and
//! config values so both accept exactly the same forms.

use std::time::Duration;

/// The longest duration accepted anywhere (a year): larger values are typos, and keeping them
/// bounded means no arithmetic on them can overflow.
pub const MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// Parses a sequence of `<number><unit>` parts, units `s`, `m`, `h`, `d`, `w`, each at most once
/// and largest first, up to [`MAX`]. Returns a sentence saying what is wrong otherwise.
pub fn parse(text: &str) -> Result<Duration, String> {
    parse_at_most(text, MAX)
}

/// [`parse`] for a value with a bound of its own (a mute's 28 days): one too long is told
/// against that bound, not against the year that bounds every duration.
pub fn parse_at_most(text: &str, max: Duration) -> Result<Duration, String> {
    let max = max.min(MAX);
    let too_long = || format!("\"{text}\" is too long (at most {})", format(max));
    let bad = || format!("\"{text}\" is not a duration (try 30s, 10m, 2h30m or 7d)");
    if text.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut digits = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
            continue;
        }
        let unit = match ch.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(bad()),
        };
        if digits.is_empty() || unit >= last_unit {
            return Err(bad());
        }
        let n: u64 = digits.parse().map_err(|_| too_long())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(too_long)?;
        last_unit = unit;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(bad());
    }
    let duration = Duration::from_secs(total);
    if duration > max {
        return Err(too_long());
    }
    if duration.is_zero() {
        return Err(format!(
            "\"{text}\" is zero; a duration must be at least 1s"
        ));
    }
    Ok(duration)
}

/// Formats a duration the way [`parse`] reads it, e.g. `2h30m`, rounding up to whole seconds
/// so "try again in 2s" is never too early.
pub fn format(duration: Duration) -> String {
    let mut secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    let mut out = String::new();
    for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
        if secs >= unit {
            out.push_str(&format!("{}{name}", secs / unit));
            secs %= unit;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("2h30m"), Ok(Duration::from_secs(9000)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse("1w2d"), Ok(Duration::from_secs(777_600)));
        assert_eq!(parse("90S"), Ok(Duration::from_secs(90)));
    }

    #[test]
    fn rejects_malformed_zero_and_huge() {
        for bad in ["", "10", "m", "10x", "5m2h", "1h1h", "-5m", "1.5h"] {
            assert!(
                parse(bad).unwrap_err().contains("is not a duration"),
                "{bad}"
            );
        }
        assert!(parse("0s").unwrap_err().contains("zero"));
        assert!(parse("367d").unwrap_err().contains("too long"));
        assert!(
            parse("99999999999999999999999d")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse("9999999999999999w").unwrap_err().contains("too long"));
    }

    /// A value with a bound of its own is told that bound, however far past it, and never
    /// more than the year every duration is bounded by.
    #[test]
    fn a_bounded_value_is_told_its_own_bound() {
        let days = |n: u64| Duration::from_secs(n * 86_400);
        assert_eq!(parse_at_most("28d", days(28)), Ok(days(28)));
        for long in ["28d1s", "400d", "99999999999999999999999d"] {
            assert_eq!(
                parse_at_most(long, days(28)),
                Err(format!("\"{long}\" is too long (at most 28d)"))
            );
        }
        assert_eq!(
            parse_at_most("367d", days(3650)),
            Err("\"367d\" is too long (at most 366d)".into())
        );
        assert_eq!(parse("366d"), Ok(MAX));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["2h30m", "7d", "45s", "1d1h1m1s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
        assert_eq!(format(Duration::from_millis(300)), "1s");
        assert_eq!(format(Duration::from_millis(1990)), "2s");
    }
}
