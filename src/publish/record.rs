//! The record `emotionpublish` and `--publish` send per window: the JSON Lines record
//! (docs/batch.md; `start`/`end` in running time, `stream_start`/`stream_end` in stream
//! time) plus `source` and a UTC wall-clock `timestamp`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::output::{WindowResult, jsonl};

/// The published record of `window` from `source`, stamped `now`.
pub fn record(window: &WindowResult, source: &str, now: SystemTime) -> Value {
    let mut rec = jsonl::record(window);
    if let Value::Object(map) = &mut rec {
        map.insert("source".into(), json!(source));
        map.insert("timestamp".into(), json!(utc_rfc3339(now)));
    }
    rec
}

/// `2026-11-30T08:05:40.123Z`.
pub fn utc_rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_rfc3339() {
        let at = |s: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(s * 1000 + ms);
        assert_eq!(utc_rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // `date -u -d @1796025940` = Mon Nov 30 08:05:40 UTC 2026.
        assert_eq!(
            utc_rfc3339(at(1_796_025_940, 123)),
            "2026-11-30T08:05:40.123Z"
        );
        assert_eq!(utc_rfc3339(at(951_782_400, 0)), "2000-02-29T00:00:00.000Z");
    }
}
