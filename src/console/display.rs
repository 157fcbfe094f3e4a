//! How the handling side shows things to people: teams and statuses in their fixed order, how
//! long ago, and local time.

use chrono::{DateTime, Utc};

use crate::catalog::Team;
use crate::requests::{BatchSchedule, Status};

/// Teams in the order the pages show them (and the dashboard's colours follow).
pub(super) const TEAMS: [Team; 4] = [Team::Rnd, Team::Ops, Team::Functional, Team::Mailbox];

/// Statuses in the order the counts show them.
pub(super) const STATUSES: [Status; 5] = [
    Status::Submitted,
    Status::Processing,
    Status::Done,
    Status::Rejected,
    Status::Cancelled,
];

/// How long ago, for people: "12 分钟", "5 小时", "2 天 3 小时".
pub(crate) fn age(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - since).num_minutes().max(0);
    let (days, hours) = (minutes / 1440, (minutes % 1440) / 60);
    match (days, hours) {
        (0, 0) => format!("{minutes} 分钟"),
        (0, h) => format!("{h} 小时"),
        (d, 0) => format!("{d} 天"),
        (d, h) => format!("{d} 天 {h} 小时"),
    }
}

/// Local time for people: the schedule's zone (Asia/Shanghai).
pub(crate) fn local_time(schedule: &BatchSchedule, at: DateTime<Utc>, format: &str) -> String {
    at.with_timezone(&schedule.tz).format(format).to_string()
}
