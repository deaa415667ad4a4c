//! UTC timestamps as RFC 3339 text, for data models and backup folder names, without a calendar
//! dependency (the civil-date arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 -> (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) -> days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parts(t: SystemTime) -> (i64, u32, u32, u64, u32) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    (y, mo, d, secs % 86_400, since.subsec_millis())
}

/// `2024-05-01T12:30:00.123Z`.
#[must_use]
pub fn format_utc(t: SystemTime) -> String {
    let (y, mo, d, s, ms) = parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", s / 3600, s / 60 % 60, s % 60)
}

/// `20240501T123000Z`: compact, sortable and safe in file names on every OS.
#[must_use]
pub fn compact_utc(t: SystemTime) -> String {
    let (y, mo, d, s, _) = parts(t);
    format!("{y:04}{mo:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// Largest year [`parse_utc`] accepts: keeps the day arithmetic far from overflow (and far beyond
/// any time a session file can hold).
const MAX_YEAR: i64 = 1_000_000_000;

/// Parses what [`format_utc`] writes (fractional seconds optional). The text comes from files:
/// out-of-range fields and times `SystemTime` cannot hold give `None`, never a panic.
#[must_use]
pub fn parse_utc(text: &str) -> Option<SystemTime> {
    let (date, clock) = text.strip_suffix('Z')?.split_once('T')?;
    let mut ymd = date.split('-').map(str::parse::<u32>);
    let (year, month, day) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, "0"));
    let mut hms = hms.split(':').map(str::parse::<u64>);
    let (hour, minute, second) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    let millis: u64 = format!("{frac:0<3}").get(..3)?.parse().ok()?;
    let valid = i64::from(year) <= MAX_YEAR
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let days = u64::try_from(days_from_civil(i64::from(year), month, day)).ok()?;
    let secs = days.checked_mul(86_400)? + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))?.checked_add(Duration::from_millis(millis))
}

/// `#[serde(with = "crate::time::rfc3339")]` for `SystemTime` fields.
pub mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_utc(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_utc(&text).ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 UTC time: {text:?}")))
    }
}

/// `#[serde(with = "crate::time::seconds")]` for `Duration` fields, as fractional seconds.
pub mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_knows_the_calendar() {
        let t = UNIX_EPOCH + Duration::from_millis(1_709_210_096_789); // 2024-02-29 (leap day)
        assert_eq!(format_utc(t), "2024-02-29T12:34:56.789Z");
        assert_eq!(compact_utc(t), "20240229T123456Z");
        assert_eq!(parse_utc(&format_utc(t)), Some(t));
        assert_eq!(format_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(parse_utc("2000-03-01T00:00:00Z").map(format_utc).as_deref(), Some("2000-03-01T00:00:00.000Z"));
        assert!(parse_utc("yesterday").is_none());
    }

    #[test]
    fn out_of_range_times_from_damaged_files_are_refused() {
        for bad in [
            "99999999999-01-01T00:00:00Z",
            "4294967295-01-01T00:00:00Z",
            "2024-4294967295-01T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "2024-01-01T18446744073709551615:00:00Z",
            "2024-01-01T00:99:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
        assert!(parse_utc("999999999-12-31T23:59:59.999Z").is_some_and(|t| t > SystemTime::now()));
    }
}
