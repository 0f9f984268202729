//! The clock: `--now <RFC3339>` or the real time, at one-second resolution
//! (X.509 times have no finer one). The only place that reads the real clock.

use crate::{Error, Result};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The clock a command runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// The time to use.
    pub now: OffsetDateTime,
    /// Whether it came from `--now`.
    pub explicit: bool,
}

impl Clock {
    /// Parses `--now`, or reads the real clock.
    pub fn resolve(now: Option<&str>) -> Result<Clock> {
        match now {
            Some(text) => {
                let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|source| Error::BadNow {
                    text: text.to_owned(),
                    source,
                })?;
                Ok(Clock {
                    now: t.replace_nanosecond(0).expect("0 is valid"),
                    explicit: true,
                })
            }
            None => Ok(Clock {
                now: real_now(),
                explicit: false,
            }),
        }
    }

    /// Refuses an explicit clock more than a day off the real one unless
    /// `allowed` (`--allow-clock-skew`): certificates issued with it are
    /// expired or not yet valid on real servers at the real time.
    pub fn check_skew(&self, allowed: bool) -> Result<()> {
        let hours = (self.now - real_now()).whole_hours();
        if !self.explicit || hours.abs() <= 24 || allowed {
            return Ok(());
        }
        Err(Error::ClockSkew { days: hours / 24 })
    }

    /// A warning when an explicit clock is more than a day off the real one.
    pub fn skew_warning(&self) -> Option<String> {
        let skew = (self.now - real_now()).whole_hours().abs();
        (self.explicit && skew > 24).then(|| {
            format!(
                "`--now` is {} days from the real clock: certificates issued now are not valid on real servers at the real time",
                skew / 24
            )
        })
    }
}

fn real_now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is valid")
}

/// RFC 3339 text of `t`.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// RFC 3339 text of unix seconds `unix` (as stored in manifests); the
/// number itself when it is out of range.
pub fn rfc3339_unix(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(rfc3339)
        .unwrap_or_else(|_| unix.to_string())
}
