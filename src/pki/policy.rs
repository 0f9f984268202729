//! Renewal policy: which SANs a leaf needs and whether a deployed leaf may
//! stay. Pure functions of their arguments (`now` included).

use super::inspect::{self, first_cert_der, parse_der};
use super::{Reason, RenewReason};
use crate::topology::Tls;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use time::OffsetDateTime;

/// SANs every leaf carries besides the cell hosts: local connections.
pub const LOCAL_SANS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

const SECONDS_PER_DAY: i64 = 86_400;

/// The SANs a leaf must carry: `hosts`, `localhost`, `127.0.0.1`, `::1`,
/// then `policy.extra_sans`, deduplicated in that order (first occurrence
/// wins; DNS names compare case-insensitively).
pub fn required_sans(hosts: &[&str], policy: &Tls) -> Vec<String> {
    let mut seen = HashSet::new();
    hosts
        .iter()
        .copied()
        .chain(LOCAL_SANS)
        .chain(policy.extra_sans.iter().map(String::as_str))
        .filter(|san| seen.insert(san_key(san)))
        .map(str::to_owned)
        .collect()
}

/// Whole days from `now` until `not_after`, rounded down (negative once
/// expired: one second past notAfter is day -1).
pub fn days_left(not_after: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let left = not_after - now;
    // `whole_seconds` truncates toward zero; floor it for negative spans.
    let secs = left.whole_seconds() - i64::from(left.subsec_nanoseconds() < 0);
    secs.div_euclid(SECONDS_PER_DAY)
}

/// The renewal decision: `None` when the leaf may stay.
///
/// Checked in this order, the first hit wins: unparsable, not signed by
/// `ca_pem`, not yet valid, expired, inside the renewal window, lacking a
/// required SAN, key algorithm other than the policy's.
pub fn renewal(
    leaf_pem: &str,
    ca_pem: &str,
    required_sans: &[String],
    policy: &Tls,
    now: OffsetDateTime,
) -> Option<RenewReason> {
    let info = match inspect::inspect(leaf_pem) {
        Ok(info) => info,
        Err(e) => return Some(RenewReason::Invalid(invalid_reason(&e))),
    };
    if !inspect::signed_by(leaf_pem, ca_pem) {
        return Some(RenewReason::WrongCa);
    }
    if now < info.not_before {
        return Some(RenewReason::NotYetValid);
    }
    if now > info.not_after {
        return Some(RenewReason::Expired {
            days_ago: days_left(now, info.not_after),
        });
    }
    let left = days_left(info.not_after, now);
    // A leaf that already ends with its CA gains nothing from re-issuing:
    // the CA is due (see [`ca_renewal`]), not the leaf.
    let ends_with_ca = inspect::inspect(ca_pem).is_ok_and(|ca| info.not_after >= ca.not_after);
    if left < i64::from(policy.renew_before_days) && !ends_with_ca {
        return Some(RenewReason::Due {
            days_left: left,
            window: policy.renew_before_days,
        });
    }
    let missing = missing_sans(
        required_sans,
        &info.dns_sans,
        &info.ip_sans,
        policy.ip_sans_as_dns,
    );
    if !missing.is_empty() {
        return Some(RenewReason::MissingSans(missing));
    }
    // inspect succeeded, so the certificate parses again.
    let alg = first_cert_der(leaf_pem).ok().and_then(|der| {
        parse_der(&der)
            .ok()
            .and_then(|c| inspect::spki_algorithm(c.public_key()))
    });
    if alg != Some(policy.key_algorithm) {
        return Some(RenewReason::KeyAlgorithm);
    }
    None
}

/// The CA's own renewal decision: `None` while it may stay.
///
/// Judged like a leaf (unparsable, not yet valid, expired, inside its
/// window), where the window is a leaf's validity: once a leaf issued now
/// would outlive the CA, the CA is due (`pgbr rotate --ca`).
pub fn ca_renewal(ca_pem: &str, policy: &Tls, now: OffsetDateTime) -> Option<RenewReason> {
    let info = match inspect::inspect(ca_pem) {
        Ok(info) => info,
        Err(e) => return Some(RenewReason::Invalid(invalid_reason(&e))),
    };
    if now < info.not_before {
        return Some(RenewReason::NotYetValid);
    }
    if now > info.not_after {
        return Some(RenewReason::Expired {
            days_ago: days_left(now, info.not_after),
        });
    }
    let left = days_left(info.not_after, now);
    (left < i64::from(policy.cert_validity_days)).then_some(RenewReason::Due {
        days_left: left,
        window: policy.cert_validity_days,
    })
}

/// The required SANs the leaf lacks. A DNS requirement is met by a DNS SAN
/// (case-insensitive); an IP requirement by an IP SAN and, when
/// `ip_sans_as_dns` (pgBackRest before 2.53 matches an IP `pgN-host` only
/// against DNS SANs), also by a DNS SAN with the same text.
pub fn missing_sans(
    required: &[String],
    dns_sans: &[String],
    ip_sans: &[String],
    ip_sans_as_dns: bool,
) -> Vec<String> {
    let dns: HashSet<String> = dns_sans.iter().map(|s| san_key(s)).collect();
    let ips: HashSet<IpAddr> = ip_sans.iter().filter_map(|s| s.parse().ok()).collect();
    required
        .iter()
        .filter(|san| {
            let Ok(ip) = san.parse::<IpAddr>() else {
                return !dns.contains(&san_key(san));
            };
            !ips.contains(&ip) || (ip_sans_as_dns && !dns.contains(&san_key(san)))
        })
        .cloned()
        .collect()
}

/// DNS names are case-insensitive; IP addresses compare by value.
fn san_key(san: &str) -> String {
    match san.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => san.to_ascii_lowercase(),
    }
}

fn invalid_reason(e: &super::Error) -> String {
    match e {
        super::Error::Parse {
            reason: Reason(r), ..
        } => r.clone(),
        other => other.to_string(),
    }
}

impl fmt::Display for RenewReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenewReason::Missing => f.write_str("no certificate issued yet"),
            RenewReason::Due { days_left, window } => write!(
                f,
                "expires in {} {}, renewal window is {} {}",
                days_left,
                plural(*days_left, "day"),
                window,
                plural(i64::from(*window), "day")
            ),
            RenewReason::Expired { days_ago: 0 } => f.write_str("expired today"),
            RenewReason::Expired { days_ago } => {
                write!(f, "expired {} {} ago", days_ago, plural(*days_ago, "day"))
            }
            RenewReason::NotYetValid => f.write_str("not valid yet (notBefore lies ahead)"),
            RenewReason::WrongCa => f.write_str("not signed by the current CA"),
            RenewReason::MissingSans(sans) => {
                let list: Vec<String> = sans.iter().map(|s| format!("`{s}`")).collect();
                write!(f, "lacks SANs {}", list.join(", "))
            }
            RenewReason::KeyAlgorithm => f.write_str("key algorithm differs from the policy"),
            RenewReason::Forced => f.write_str("rotation requested"),
            RenewReason::Invalid(reason) => write!(f, "unreadable certificate ({reason})"),
        }
    }
}

fn plural(n: i64, word: &str) -> String {
    if n == 1 {
        word.to_owned()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testutil::{day0, policy, rsa_key, strings};
    use crate::pki::{inspect, issue_ca, issue_ca_with_key, issue_leaf, issue_leaf_with_key};
    use crate::topology::KeyAlgorithm;
    use time::Duration;

    fn day(n: i64) -> OffsetDateTime {
        day0() + Duration::days(n)
    }

    #[test]
    fn required_sans_orders_and_deduplicates() {
        let mut p = policy();
        p.extra_sans = strings(&["backup.example", "LOCALHOST", "db1.example", "0:0::1"]);
        let sans = required_sans(&["db1.example", "10.0.0.5", "localhost", "DB1.example"], &p);
        assert_eq!(
            sans,
            strings(&[
                "db1.example",
                "10.0.0.5",
                "localhost",
                "127.0.0.1",
                "::1",
                "backup.example"
            ])
        );
    }

    #[test]
    fn days_left_rounds_down() {
        let t = day0();
        assert_eq!(days_left(t + Duration::days(3), t), 3);
        assert_eq!(
            days_left(t + Duration::days(3) - Duration::seconds(1), t),
            2
        );
        assert_eq!(days_left(t, t), 0);
        assert_eq!(days_left(t - Duration::seconds(1), t), -1);
        assert_eq!(days_left(t - Duration::days(3), t), -3);
        assert_eq!(days_left(t - Duration::milliseconds(1), t), -1);
        assert_eq!(days_left(t + Duration::milliseconds(1), t), 0);
    }

    #[test]
    fn missing_sans_needs_ips_as_ip_sans_and_before_2_53_as_dns_sans_too() {
        let req = strings(&["db1.example", "10.0.0.5", "::1"]);
        let both = (
            strings(&["DB1.Example", "10.0.0.5", "::1"]),
            strings(&["10.0.0.5", "::1"]),
        );
        assert!(missing_sans(&req, &both.0, &both.1, true).is_empty());
        assert!(missing_sans(&req, &both.0, &both.1, false).is_empty());
        // From 2.53 an IP SAN alone is enough; before, the DNS SAN is needed.
        let ip_only = (strings(&["db1.example"]), strings(&["10.0.0.5", "::1"]));
        assert!(missing_sans(&req, &ip_only.0, &ip_only.1, false).is_empty());
        assert_eq!(
            missing_sans(&req, &ip_only.0, &ip_only.1, true),
            strings(&["10.0.0.5", "::1"])
        );
        assert_eq!(
            missing_sans(&req, &strings(&["10.0.0.5"]), &[], true),
            strings(&["db1.example", "10.0.0.5", "::1"])
        );
    }

    #[test]
    fn each_reason() {
        let p = policy();
        let ca = issue_ca(&p, day0()).unwrap();
        let sans = required_sans(&["db1.example"], &p);
        let leaf = issue_leaf(&ca, &p, &sans, day0()).unwrap();
        let decide =
            |leaf: &str, ca: &str, sans: &[String], p: &Tls, now| renewal(leaf, ca, sans, p, now);

        assert_eq!(
            decide(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day0()),
            None
        );
        assert!(matches!(
            decide("garbage", &ca.cert_pem, &sans, &p, day0()),
            Some(RenewReason::Invalid(_))
        ));
        let other = issue_ca(&p, day0()).unwrap();
        assert_eq!(
            decide(&leaf.cert_pem, &other.cert_pem, &sans, &p, day0()),
            Some(RenewReason::WrongCa)
        );
        assert_eq!(
            decide(
                &leaf.cert_pem,
                &ca.cert_pem,
                &sans,
                &p,
                day0() - Duration::hours(2)
            ),
            Some(RenewReason::NotYetValid)
        );
        // Back-dated one hour: valid just now, whatever the sub-seconds.
        assert_eq!(
            decide(
                &leaf.cert_pem,
                &ca.cert_pem,
                &sans,
                &p,
                day0() - Duration::minutes(59)
            ),
            None
        );
        assert_eq!(
            decide(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(368)),
            Some(RenewReason::Expired { days_ago: 3 })
        );
        assert_eq!(
            decide(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(304)),
            Some(RenewReason::Due {
                days_left: 60,
                window: 122
            })
        );
        let more = required_sans(&["db1.example", "db4.example"], &p);
        assert_eq!(
            decide(&leaf.cert_pem, &ca.cert_pem, &more, &p, day0()),
            Some(RenewReason::MissingSans(strings(&["db4.example"])))
        );
        let mut rsa = p.clone();
        rsa.key_algorithm = KeyAlgorithm::Rsa2048;
        assert_eq!(
            decide(&leaf.cert_pem, &ca.cert_pem, &sans, &rsa, day0()),
            Some(RenewReason::KeyAlgorithm)
        );
        let rsa_ca = issue_ca_with_key(&rsa, day0(), &rsa_key("ca")).unwrap();
        let rsa_leaf = issue_leaf_with_key(&rsa_ca, &rsa, &sans, day0(), &rsa_key("leaf")).unwrap();
        assert_eq!(
            decide(&rsa_leaf.cert_pem, &rsa_ca.cert_pem, &sans, &rsa, day0()),
            None
        );
    }

    #[test]
    fn a_year_with_an_injected_clock() {
        let mut p = policy();
        let ca = issue_ca(&p, day(0)).unwrap();
        let hosts = ["db1.example", "10.0.0.5"];
        let sans = required_sans(&hosts, &p);
        let leaf = issue_leaf(&ca, &p, &sans, day(0)).unwrap();

        assert_eq!(
            renewal(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(200)),
            None
        );
        let due = renewal(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(250)).unwrap();
        // 115 days minus the clock's 0.25 s: 114 whole days.
        assert_eq!(
            due,
            RenewReason::Due {
                days_left: 114,
                window: 122
            }
        );
        assert_eq!(
            due.to_string(),
            "expires in 114 days, renewal window is 122 days"
        );

        let renewed = issue_leaf(&ca, &p, &sans, day(250)).unwrap();
        let info = inspect(&renewed.cert_pem).unwrap();
        assert!(crate::pki::signed_by(&renewed.cert_pem, &ca.cert_pem));
        assert_eq!(
            info.not_after,
            crate::pki::issue::whole_seconds(day(250) + Duration::days(365))
        );
        assert_eq!(
            renewal(&renewed.cert_pem, &ca.cert_pem, &sans, &p, day(250)),
            None
        );
        assert_eq!(
            renewal(&renewed.cert_pem, &ca.cert_pem, &sans, &p, day(400)),
            None
        );

        let grown = required_sans(&["db1.example", "10.0.0.5", "db4.example"], &p);
        assert_eq!(
            renewal(&renewed.cert_pem, &ca.cert_pem, &grown, &p, day(260)),
            Some(RenewReason::MissingSans(strings(&["db4.example"])))
        );
        p.extra_sans = strings(&["backup.example"]);
        let extra = required_sans(&hosts, &p);
        assert_eq!(
            renewal(&renewed.cert_pem, &ca.cert_pem, &extra, &p, day(260)),
            Some(RenewReason::MissingSans(strings(&["backup.example"])))
        );

        let new_ca = issue_ca(&p, day(300)).unwrap();
        assert_eq!(
            renewal(&renewed.cert_pem, &new_ca.cert_pem, &sans, &p, day(300)),
            Some(RenewReason::WrongCa)
        );
        assert_eq!(
            renewal(
                &leaf.cert_pem,
                &ca.cert_pem,
                &sans,
                &p,
                day(365) + Duration::hours(1)
            ),
            Some(RenewReason::Expired { days_ago: 0 })
        );
        assert_eq!(
            renewal(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(366)),
            Some(RenewReason::Expired { days_ago: 1 })
        );
    }

    #[test]
    fn the_ca_is_judged_like_a_leaf() {
        let p = policy(); // CA 3650 days, leaves 365
        let ca = issue_ca(&p, day0()).unwrap();
        assert_eq!(ca_renewal(&ca.cert_pem, &p, day(3000)), None);
        assert_eq!(
            ca_renewal(&ca.cert_pem, &p, day(3286)),
            Some(RenewReason::Due {
                days_left: 363,
                window: 365
            })
        );
        assert_eq!(
            ca_renewal(&ca.cert_pem, &p, day(3651)),
            Some(RenewReason::Expired { days_ago: 1 })
        );
        assert_eq!(
            ca_renewal(&ca.cert_pem, &p, day0() - Duration::hours(2)),
            Some(RenewReason::NotYetValid)
        );
        assert!(matches!(
            ca_renewal("garbage", &p, day0()),
            Some(RenewReason::Invalid(_))
        ));
    }

    #[test]
    fn a_leaf_ending_with_its_ca_is_not_due() {
        let mut p = policy();
        p.ca_validity_days = 400;
        let ca = issue_ca(&p, day0()).unwrap();
        let sans = required_sans(&["db1.example"], &p);
        let leaf = issue_leaf(&ca, &p, &sans, day(300)).unwrap();
        let info = inspect(&leaf.cert_pem).unwrap();
        assert_eq!(info.not_after, inspect(&ca.cert_pem).unwrap().not_after);
        assert_eq!(
            renewal(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(301)),
            None
        );
        assert!(matches!(
            renewal(&leaf.cert_pem, &ca.cert_pem, &sans, &p, day(401)),
            Some(RenewReason::Expired { .. })
        ));
    }

    #[test]
    fn reasons_read_as_operator_text() {
        let texts: Vec<String> = [
            RenewReason::Missing,
            RenewReason::Due {
                days_left: 61,
                window: 122,
            },
            RenewReason::Due {
                days_left: 1,
                window: 1,
            },
            RenewReason::Expired { days_ago: 3 },
            RenewReason::Expired { days_ago: 1 },
            RenewReason::Expired { days_ago: 0 },
            RenewReason::NotYetValid,
            RenewReason::WrongCa,
            RenewReason::MissingSans(strings(&["db4.example", "10.0.0.9"])),
            RenewReason::KeyAlgorithm,
            RenewReason::Forced,
            RenewReason::Invalid("X.509: bad".into()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        insta::assert_snapshot!(texts.join("\n"));
    }
}
