//! `pgbr status` and `pgbr certs`.

use super::plan::make_plan;
use crate::apply::{
    entry_files, health::probe_tls, health_spec, read_releases, stored_cert, HealthSpec,
    LocalTarget, Target,
};
use crate::cli::StatusArgs;
use crate::clock::{rfc3339, Clock};
use crate::output::{errln, outln};
use crate::plan::{days_until, Request};
use crate::store::{Location, Store};
use crate::topology::PgbackrestVersion;
use crate::{exit_codes, topology, Result};
use std::time::Duration;
use time::OffsetDateTime;

/// `pgbr status`.
pub fn status(state: &Location, args: &StatusArgs) -> Result<u8> {
    let clock = Clock::resolve(args.now.as_deref())?;
    let store = Store::open(state)?;
    let topo = topology::load(&args.topology)?;
    let (inputs, plan) = make_plan(&store, &topo, &args.topology, Request::default(), &clock)?;
    // What each host runs, next to what the topology expects.
    let releases = if args.probe {
        let target: &dyn Target = &LocalTarget;
        read_releases(
            topo.cells.iter().map(|c| (c.name.as_str(), target)),
            &topo.pgbackrest.bin,
        )
    } else {
        Vec::new()
    };
    let expected = topo.pgbackrest.version.to_string();
    let mut rows = Vec::new();
    for cell in &topo.cells {
        let name = cell.name.as_str();
        let now_state = &inputs.cells[name];
        let cp = plan.cells.iter().find(|c| c.cell == name);
        let live = now_state.live.as_ref();
        let cert = live.and_then(|(_, e)| e.cert.clone());
        let days_left = cert.as_ref().map(|c| {
            days_until(
                OffsetDateTime::from_unix_timestamp(c.not_after)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                clock.now,
            )
        });
        let probe = if args.probe {
            Some(match live {
                Some((_, entry)) => {
                    let files = entry_files(&store, entry)?;
                    let mut e = entry.clone();
                    e.health = "tls".into();
                    match health_spec(&e, &files) {
                        HealthSpec::Tls {
                            addr,
                            server_name,
                            ca_pem,
                            client,
                            expect_serial,
                        } => {
                            match probe_tls(
                                &addr,
                                &server_name,
                                &ca_pem,
                                &client,
                                Duration::from_secs(5),
                            ) {
                                Ok(r) => serde_json::json!({
                                    "ok": r.presented.serial == expect_serial,
                                    "address": addr,
                                    "presented_serial": r.presented.serial,
                                    "expected_serial": expect_serial,
                                    "days_left": days_until(r.presented.not_after, clock.now),
                                    "protocol": r.protocol,
                                    "server_version": server_version(r.greeting.as_deref()),
                                }),
                                Err(err) => serde_json::json!({
                                    "ok": false,
                                    "address": addr,
                                    "error": crate::apply::error_chain(&err),
                                }),
                            }
                        }
                        _ => serde_json::json!({"ok": false, "error": "no TLS material"}),
                    }
                }
                None => serde_json::json!({"ok": false, "error": "not deployed"}),
            })
        } else {
            None
        };
        let pgbackrest = releases.iter().find(|r| r.cell == name).map(|r| {
            serde_json::json!({
                "expected": expected,
                "installed": r.found.as_ref().ok(),
                "error": r.found.as_ref().err(),
                "matches": r.found.as_ref().is_ok_and(|f| {
                    PgbackrestVersion::parse(f) == Some(topo.pgbackrest.version)
                }),
            })
        });
        rows.push(serde_json::json!({
            "cell": name,
            "live_generation": live.map(|l| l.0),
            "phase": live.map(|l| l.1.phase),
            "pending": cp.map(|c| c.action),
            "drift": cp.map(|c| c.drift.clone()).unwrap_or_default(),
            "serial": cert.as_ref().map(|c| c.serial.clone()),
            "not_after": cert.as_ref().and_then(|c| OffsetDateTime::from_unix_timestamp(c.not_after).ok()).map(rfc3339),
            "days_left": days_left,
            "renewal_due": days_left.map(|d| d < i64::from(topo.tls.renew_before_days)),
            "probe": probe,
            "pgbackrest": pgbackrest,
        }));
    }
    let failed = rows
        .iter()
        .filter(|r| r["probe"].is_object() && r["probe"]["ok"] != true)
        .count();
    // Monitoring reads the exit code; the operator reads the last line.
    let finish = || {
        if failed == 0 {
            return exit_codes::SUCCESS;
        }
        errln!("{failed} of {} TLS probe(s) failed", rows.len());
        exit_codes::PROBE_FAILED
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(finish());
    }
    outln!(
        "{:<16} {:>4}  {:<9}  {:<9}  {:<47}  {:>9}  DRIFT",
        "CELL",
        "GEN",
        "PHASE",
        "PENDING",
        "SERIAL",
        "DAYS LEFT"
    );
    for r in &rows {
        let s = |k: &str| {
            r[k].as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| "-".into())
        };
        let drift = r["drift"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        outln!(
            "{:<16} {:>4}  {:<9}  {:<9}  {:<47}  {:>9}  {}",
            s("cell"),
            r["live_generation"]
                .as_u64()
                .map(|g| g.to_string())
                .unwrap_or_else(|| "-".into()),
            s("phase"),
            s("pending"),
            s("serial"),
            r["days_left"]
                .as_i64()
                .map(|d| d.to_string())
                .unwrap_or_else(|| "-".into()),
            if drift.is_empty() {
                "none".to_owned()
            } else {
                drift
            },
        );
        if let Some(b) = r.get("pgbackrest").filter(|b| !b.is_null()) {
            let expected = b["expected"].as_str().unwrap_or("?");
            match b["installed"].as_str() {
                Some(v) if b["matches"] == true => {
                    outln!("    pgBackRest: {v} installed (expected {expected})")
                }
                Some(v) => outln!(
                    "    pgBackRest: {v} installed, but the topology expects {expected} (`[pgbackrest] version`)"
                ),
                None => outln!(
                    "    pgBackRest: unknown, expected {expected}: {}",
                    b["error"].as_str().unwrap_or("?")
                ),
            }
        }
        if let Some(p) = r.get("probe").filter(|p| !p.is_null()) {
            match p["ok"].as_bool() {
                Some(true) => outln!(
                    "    probe: ok, presents serial {} ({} days left, {}, pgBackRest {}, expected {})",
                    p["presented_serial"].as_str().unwrap_or("?"),
                    p["days_left"],
                    p["protocol"].as_str().unwrap_or("?"),
                    p["server_version"].as_str().unwrap_or("version not stated"),
                    topo.pgbackrest.version,
                ),
                _ => outln!(
                    "    probe: FAILED: {}",
                    p["error"]
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| format!(
                            "presents serial {}",
                            p["presented_serial"].as_str().unwrap_or("?")
                        ))
                ),
            }
        }
    }
    Ok(finish())
}

/// `pgbr certs`.
pub fn certs(state: &Location, json: bool, now: Option<&str>) -> Result<u8> {
    let clock = Clock::resolve(now)?;
    let store = Store::open(state)?;
    let record = store.pki()?;
    let mut rows = Vec::new();
    let mut add = |role: String, pair: &crate::store::StoredPair| -> Result<()> {
        let c = stored_cert(&store, pair, &role)?;
        rows.push(serde_json::json!({
            "role": role,
            "serial": c.info.serial,
            "fingerprint": c.info.fingerprint,
            "subject_cn": c.info.subject_cn,
            "sans": c.info.dns_sans.iter().chain(c.info.ip_sans.iter()).collect::<Vec<_>>(),
            "not_after": rfc3339(c.info.not_after),
            "days_left": days_until(c.info.not_after, clock.now),
        }));
        Ok(())
    };
    if let Some(p) = &record.ca {
        add("ca".into(), p)?;
    }
    if let Some(p) = &record.previous_ca {
        add("previous ca".into(), p)?;
    }
    for (key, p) in &record.leaves {
        add(
            if key == "*" {
                "leaf (shared)".into()
            } else {
                format!("leaf {key}")
            },
            p,
        )?;
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&rows).expect("json"));
        return Ok(exit_codes::SUCCESS);
    }
    if rows.is_empty() {
        outln!("No certificates yet: `pgbr apply` issues them.");
        return Ok(exit_codes::SUCCESS);
    }
    for r in &rows {
        outln!(
            "{}: serial {} (sha256 {})\n    CN {}, SANs {}\n    expires {} ({} days left)",
            r["role"].as_str().unwrap_or(""),
            r["serial"].as_str().unwrap_or(""),
            r["fingerprint"].as_str().unwrap_or(""),
            r["subject_cn"].as_str().unwrap_or(""),
            r["sans"]
                .as_array()
                .map(|a| a
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default(),
            r["not_after"].as_str().unwrap_or(""),
            r["days_left"],
        );
    }
    Ok(exit_codes::SUCCESS)
}

/// The version in a pgBackRest server's greeting line, if it states one.
fn server_version(greeting: Option<&str>) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(greeting?).ok()?;
    v["version"].as_str().map(str::to_owned)
}
