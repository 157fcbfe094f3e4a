//! Batch days: which daily batch a request joins and how to say when it will be done.
//! Pure; the clock is passed in.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::config::ScheduleSection;

/// The daily processing schedule (seed: 16:00 cut-off, done by 17:30, every day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSchedule {
    pub tz: Tz,
    pub cutoff: NaiveTime,
    pub done_by: NaiveTime,
}

impl Default for BatchSchedule {
    fn default() -> Self {
        Self {
            tz: chrono_tz::Asia::Shanghai,
            cutoff: NaiveTime::from_hms_opt(16, 0, 0).unwrap_or_default(),
            done_by: NaiveTime::from_hms_opt(17, 30, 0).unwrap_or_default(),
        }
    }
}

/// A `[schedule]` setting that is not a time zone or an HH:MM time; names the setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {key}: {reason}")]
pub struct ScheduleError {
    pub key: &'static str,
    pub reason: String,
}

impl BatchSchedule {
    /// The daily batch times from `[schedule]`, parsed.
    pub fn from_settings(section: &ScheduleSection) -> Result<Self, ScheduleError> {
        let tz: Tz = section.timezone.parse().map_err(|_| ScheduleError {
            key: "schedule.timezone",
            reason: format!("unknown time zone {:?}", section.timezone),
        })?;
        let time = |key: &'static str, value: &str| {
            NaiveTime::parse_from_str(value, "%H:%M").map_err(|_| ScheduleError {
                key,
                reason: format!("expected HH:MM, got {value:?}"),
            })
        };
        Ok(Self {
            tz,
            cutoff: time("schedule.cutoff", &section.cutoff)?,
            done_by: time("schedule.done_by", &section.done_by)?,
        })
    }
}

/// The local date of the batch a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BatchDay(pub NaiveDate);

impl std::fmt::Display for BatchDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl BatchSchedule {
    /// Before the cut-off → today's batch; at or after it → tomorrow's.
    #[must_use]
    pub fn batch_for(&self, submitted: DateTime<Utc>) -> BatchDay {
        let local = submitted.with_timezone(&self.tz);
        let today = local.date_naive();
        if local.time() < self.cutoff {
            BatchDay(today)
        } else {
            BatchDay(today.succ_opt().unwrap_or(today))
        }
    }

    /// When a batch closes (its cut-off), as an instant: the handlers get it then.
    #[must_use]
    pub fn cutoff_at(&self, day: BatchDay) -> Option<DateTime<Utc>> {
        self.tz
            .from_local_datetime(&day.0.and_time(self.cutoff))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    /// When a batch is done, as an instant.
    #[must_use]
    pub fn done_at(&self, day: BatchDay) -> Option<DateTime<Utc>> {
        self.tz
            .from_local_datetime(&day.0.and_time(self.done_by))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    }

    /// "今天 17:30 前", "明天(11月29日)17:30 前", or "12月1日 17:30 前", relative to `now`.
    #[must_use]
    pub fn expectation(&self, day: BatchDay, now: DateTime<Utc>) -> String {
        let today = now.with_timezone(&self.tz).date_naive();
        let time = self.done_by.format("%H:%M");
        let date = day.0;
        if date == today {
            format!("今天 {time} 前")
        } else if Some(date) == today.succ_opt() {
            format!("明天({}月{}日){time} 前", date.month(), date.day())
        } else {
            format!("{}月{}日 {time} 前", date.month(), date.day())
        }
    }

    /// The batch-day-relative date of "now" (for `/today`).
    #[must_use]
    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_configured_schedule_is_the_seed_and_a_bad_time_names_its_setting() {
        let mut section = crate::config::Settings::load_with_env(None, Vec::new())
            .unwrap()
            .schedule;
        assert_eq!(
            BatchSchedule::from_settings(&section).unwrap(),
            BatchSchedule::default()
        );
        section.done_by = "17h30".into();
        let err = BatchSchedule::from_settings(&section).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid setting schedule.done_by: expected HH:MM, got \"17h30\""
        );
    }

    fn shanghai(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, min, s)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_second_before_the_cutoff_is_today_and_the_cutoff_itself_is_tomorrow() {
        let s = BatchSchedule::default();
        let day = |h, m, sec| s.batch_for(shanghai(2026, 11, 28, h, m, sec)).0;
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(day(15, 59, 59), today);
        assert_eq!(day(16, 0, 0), today.succ_opt().unwrap());
        assert_eq!(day(23, 59, 59), today.succ_opt().unwrap());
        assert_eq!(day(0, 0, 0), today);
    }

    #[test]
    fn the_batch_follows_shanghai_time_not_utc() {
        let s = BatchSchedule::default();
        // 2026-11-28 09:00 UTC is 17:00 in Shanghai: after the cut-off.
        let t = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
        assert_eq!(
            s.batch_for(t).0,
            NaiveDate::from_ymd_opt(2026, 11, 29).unwrap()
        );
    }

    #[test]
    fn the_receipt_wording_says_today_or_tomorrow_with_the_date() {
        let s = BatchSchedule::default();
        let morning = shanghai(2026, 11, 28, 10, 0, 0);
        assert_eq!(
            s.expectation(s.batch_for(morning), morning),
            "今天 17:30 前"
        );
        let evening = shanghai(2026, 11, 28, 16, 0, 0);
        assert_eq!(
            s.expectation(s.batch_for(evening), evening),
            "明天(11月29日)17:30 前"
        );
        let later = BatchDay(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(s.expectation(later, morning), "12月1日 17:30 前");
    }

    #[test]
    fn done_at_is_half_past_five_local() {
        let s = BatchSchedule::default();
        let day = BatchDay(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        assert_eq!(s.done_at(day).unwrap(), shanghai(2026, 11, 28, 17, 30, 0));
    }
}
