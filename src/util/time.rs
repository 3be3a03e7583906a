//! Timestamps in the two formats the Python server emits.
//!
//! Events carry a naive ISO-8601 time with microseconds and no zone suffix
//! (`2026-11-25T00:40:06.345706`); we always use UTC for it (DECISIONS.md), so
//! event timestamps sort and compare across restarts and time zones.
//! Conversations and bash events carry UTC with a `Z` suffix
//! (`2026-11-25T00:39:58.454593Z`). Like Python's `isoformat`, the fraction is
//! left out when the microseconds are exactly zero.

use jiff::{tz::TimeZone, Timestamp};

/// The current time, truncated to whole microseconds (Python's resolution).
pub fn now() -> Timestamp {
    let ts = Timestamp::now();
    let micros = ts.as_microsecond();
    Timestamp::from_microsecond(micros).unwrap_or(ts)
}

fn format(ts: Timestamp, zulu: bool) -> String {
    let dt = TimeZone::UTC.to_datetime(ts);
    let micros = dt.subsec_nanosecond() / 1000;
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    if zulu {
        out.push('Z');
    }
    out
}

/// An event timestamp: naive ISO-8601, microseconds, always UTC.
pub fn event_timestamp(ts: Timestamp) -> String {
    format(ts, false)
}

/// A conversation or bash-event timestamp: UTC with a `Z` suffix.
pub fn utc_timestamp(ts: Timestamp) -> String {
    format(ts, true)
}

/// Parses a timestamp given by a client (query filters, `after_timestamp`).
///
/// Zone-aware values are converted to UTC; naive values are taken as UTC,
/// because that is what our event timestamps are.
pub fn parse_client_timestamp(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts);
    }
    // A naive date-time (or a date alone) is UTC by our convention.
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return TimeZone::UTC.to_timestamp(dt).ok();
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .ok();
    }
    None
}

/// Parses one of our own event timestamps back (naive, UTC).
pub fn parse_event_timestamp(text: &str) -> Option<Timestamp> {
    parse_client_timestamp(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_python_isoformat() {
        let ts = Timestamp::from_microsecond(1_795_480_806_345_706).unwrap();
        assert_eq!(event_timestamp(ts), "2026-11-24T00:40:06.345706");
        assert_eq!(utc_timestamp(ts), "2026-11-24T00:40:06.345706Z");
        let whole = Timestamp::from_second(1_795_480_806).unwrap();
        assert_eq!(event_timestamp(whole), "2026-11-24T00:40:06");
        assert_eq!(utc_timestamp(whole), "2026-11-24T00:40:06Z");
    }

    #[test]
    fn parses_naive_as_utc_and_converts_zones() {
        let naive = parse_client_timestamp("2026-11-25T00:40:06.345706").unwrap();
        let zulu = parse_client_timestamp("2026-11-25T00:40:06.345706Z").unwrap();
        let offset = parse_client_timestamp("2026-11-25T01:40:06.345706+01:00").unwrap();
        assert_eq!(naive, zulu);
        assert_eq!(zulu, offset);
        assert_eq!(event_timestamp(naive), "2026-11-25T00:40:06.345706");
        assert!(parse_client_timestamp("yesterday").is_none());
    }
}
