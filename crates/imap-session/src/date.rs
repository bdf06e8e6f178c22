//! IMAP dates (RFC 9051 §9 `date` and `date-time`): parsed from SEARCH and APPEND, written
//! for INTERNALDATE.

use facteur_model::calendar::{civil_from_days, days_from_civil};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `date` of SEARCH (`d-Mon-yyyy`): the start of that day, UTC.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let d: u32 = it.next()?.parse().ok()?;
    let month = it.next()?;
    let m = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let y: i64 = it.next()?.parse().ok()?;
    // RFC 9051 §9: date-year is 4 digits.
    if it.next().is_some() || !(1..=31).contains(&d) || !(0..=9999).contains(&y) {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400)
}

/// `date-time` of APPEND (`dd-Mon-yyyy hh:mm:ss +zzzz`) as seconds since the epoch.
pub fn parse_date_time(s: &str) -> Option<i64> {
    let (date, rest) = s.split_once(' ')?;
    let (time, zone) = rest.split_once(' ')?;
    let day = parse_date(date)?;
    let mut t = time.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let mi: i64 = t.next()?.parse().ok()?;
    let se: i64 = t.next()?.parse().ok()?;
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..61).contains(&se) {
        return None;
    }
    if zone.len() != 5 || !zone.is_ascii() {
        return None;
    }
    let sign = match &zone[..1] {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let zh: i64 = zone[1..3].parse().ok()?;
    let zm: i64 = zone[3..5].parse().ok()?;
    Some(day + h * 3600 + mi * 60 + se - sign * (zh * 3600 + zm * 60))
}

/// IMAP date-time (RFC 9051 §9 `date-time`), in UTC.
pub fn date_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "\"{:2}-{}-{:04} {:02}:{:02}:{:02} +0000\"",
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_both_ways() {
        assert_eq!(date_time(1_704_099_600), "\" 1-Jan-2024 09:00:00 +0000\"");
        assert_eq!(
            parse_date_time(" 1-Jan-2024 10:00:00 +0100".trim_start()),
            Some(1_704_099_600)
        );
        assert_eq!(parse_date("1-feb-2024"), Some(1_706_745_600));
    }
}
