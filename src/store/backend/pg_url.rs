//! A libpq-style connection URL for the PostgreSQL backend, and where its
//! password comes from.
//!
//! `postgresql://[user[:password]@][host][:port][/dbname][?param=value&…]`
//! with the parameters `sslmode` (`disable`, `prefer` (the default),
//! `require`, `verify-full`),
//! `sslrootcert`, `application_name`, `connect_timeout` (seconds) and
//! `schema` (default `pgbr`), plus `user`, `password`, `host`, `port` and
//! `dbname` as libpq allows. A missing password is taken from
//! `PGPASSWORD`, then from `PGPASSFILE` or `~/.pgpass`. The password is
//! never part of [`PgUrl::redacted`], the only form errors show.

use crate::store::Error;
use percent_encoding::percent_decode_str;
use std::path::PathBuf;
use std::time::Duration;

/// How the connection uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, any certificate (libpq's default).
    Prefer,
    /// TLS, any server certificate (libpq's `require`).
    Require,
    /// TLS, the certificate chains to `sslrootcert` (or the system roots)
    /// and names the host.
    VerifyFull,
}

/// A parsed state URL.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct PgUrl {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: String,
    pub connect_timeout: Duration,
    pub schema: String,
    redacted: String,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted)
    }
}

/// Whether `raw` names a PostgreSQL store.
pub(crate) fn is_url(raw: &str) -> bool {
    raw.starts_with("postgresql://") || raw.starts_with("postgres://")
}

/// `raw` without the password in its user info or parameters.
pub(crate) fn redact(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl PgUrl {
    /// Parses `raw`; `env` reads the environment (`PGPASSWORD`,
    /// `PGPASSFILE`, `HOME`, `USER`).
    pub(super) fn parse(raw: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<PgUrl, Error> {
        let redacted = redact(raw);
        let bad = |reason: String| Error::BadStateUrl {
            url: redacted.clone(),
            reason,
        };
        let rest = raw
            .strip_prefix("postgresql://")
            .or_else(|| raw.strip_prefix("postgres://"))
            .ok_or_else(|| bad("it does not start with `postgresql://`".into()))?;
        let decode = |s: &str| -> Result<String, Error> {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad(format!("`{s}` is not UTF-8 once decoded")))
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut user = None;
        let mut password = None;
        if let Some(info) = userinfo {
            match info.split_once(':') {
                Some((u, p)) => {
                    user = Some(decode(u)?);
                    password = Some(decode(p)?);
                }
                None => user = Some(decode(info)?),
            }
        }
        let (mut host, mut port) = split_host_port(hostport).map_err(bad)?;
        let mut dbname = (!path.is_empty()).then(|| decode(path)).transpose()?;
        let mut sslmode = SslMode::Prefer;
        let mut sslrootcert = None;
        let mut application_name = "pgbr".to_owned();
        let mut connect_timeout = Duration::from_secs(10);
        let mut schema = "pgbr".to_owned();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| bad(format!("parameter `{pair}` has no `=`")))?;
            let value = decode(value)?;
            match key {
                "sslmode" => {
                    sslmode = match value.as_str() {
                        "disable" => SslMode::Disable,
                        "prefer" => SslMode::Prefer,
                        "require" => SslMode::Require,
                        "verify-full" => SslMode::VerifyFull,
                        other => {
                            return Err(bad(format!(
                                "sslmode `{other}` is not one of `disable`, `prefer`, `require`, `verify-full`"
                            )))
                        }
                    }
                }
                "sslrootcert" => sslrootcert = Some(PathBuf::from(value)),
                "application_name" => application_name = value,
                "connect_timeout" => {
                    let secs: u64 = value.parse().map_err(|_| {
                        bad(format!("connect_timeout `{value}` is not a number of seconds"))
                    })?;
                    connect_timeout = Duration::from_secs(secs.max(1));
                }
                "schema" => schema = value,
                "user" => user = Some(value),
                "password" => password = Some(value),
                "host" => host = Some(value),
                "port" => {
                    port = Some(value.parse().map_err(|_| bad(format!("port `{value}` is not a port number")))?)
                }
                "dbname" => dbname = Some(value),
                other => return Err(bad(format!("parameter `{other}` is not supported"))),
            }
        }
        if !is_identifier(&schema) {
            return Err(bad(format!(
                "schema `{schema}` is not a plain lowercase identifier ([a-z_][a-z0-9_]*)"
            )));
        }
        let user = match user.or_else(|| env("PGUSER")).or_else(|| env("USER")) {
            Some(u) => u,
            None => return Err(bad("it names no user and `USER` is not set".into())),
        };
        let host = host.unwrap_or_else(|| "localhost".to_owned());
        let port = port.unwrap_or(5432);
        let dbname = dbname.unwrap_or_else(|| user.clone());
        let password = password
            .or_else(|| env("PGPASSWORD"))
            .or_else(|| pgpass(env, &host, port, &dbname, &user));
        Ok(PgUrl {
            user,
            password,
            host,
            port,
            dbname,
            sslmode,
            sslrootcert,
            application_name,
            connect_timeout,
            schema,
            redacted,
        })
    }

    /// The URL as given, without its password.
    pub(super) fn redacted(&self) -> &str {
        &self.redacted
    }
}

fn split_host_port(hostport: &str) -> Result<(Option<String>, Option<u16>), String> {
    if hostport.is_empty() {
        return Ok((None, None));
    }
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return Err(format!("host `{hostport}` has no closing `]`")),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| format!("port `{p}` is not a port number"))?,
        ),
        None => None,
    };
    let host = (!host.is_empty()).then(|| host.to_owned());
    Ok((host, port))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// The password `~/.pgpass` (or `PGPASSFILE`) holds for this connection:
/// the first line whose host, port, database and user match (`*` matches
/// anything; `\` escapes `:` and `\`).
fn pgpass(
    env: &dyn Fn(&str) -> Option<String>,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let path = env("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
    let text = std::fs::read_to_string(path).ok()?;
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let fields = split_pgpass(line);
            (fields.len() == 5).then_some(fields)
        })
        .find(|fields| {
            fields[..4]
                .iter()
                .zip(wanted)
                .all(|(f, w)| f == "*" || f == w)
        })
        .map(|fields| fields[4].clone())
}

fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn a_full_url_parses() {
        let url = PgUrl::parse(
            "postgresql://alice:s%3Acret@db.example:6543/state?sslmode=verify-full&sslrootcert=/ca.pem&application_name=ci&connect_timeout=3&schema=team1",
            &no_env,
        )
        .unwrap();
        assert_eq!(url.user, "alice");
        assert_eq!(url.password.as_deref(), Some("s:cret"));
        assert_eq!((url.host.as_str(), url.port), ("db.example", 6543));
        assert_eq!(url.dbname, "state");
        assert_eq!(url.sslmode, SslMode::VerifyFull);
        assert_eq!(url.sslrootcert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(url.application_name, "ci");
        assert_eq!(url.connect_timeout, Duration::from_secs(3));
        assert_eq!(url.schema, "team1");
        assert!(!url.redacted().contains("cret"));
        assert!(!format!("{url:?}").contains("cret"));
    }

    #[test]
    fn defaults_and_environment() {
        let env = |k: &str| match k {
            "USER" => Some("bob".to_owned()),
            "PGPASSWORD" => Some("from-env".to_owned()),
            _ => None,
        };
        let url = PgUrl::parse("postgres://", &env).unwrap();
        assert_eq!(
            (
                url.user.as_str(),
                url.host.as_str(),
                url.port,
                url.dbname.as_str()
            ),
            ("bob", "localhost", 5432, "bob")
        );
        assert_eq!(url.password.as_deref(), Some("from-env"));
        assert_eq!(
            (url.sslmode, url.schema.as_str()),
            (SslMode::Prefer, "pgbr")
        );
    }

    #[test]
    fn pgpass_supplies_a_missing_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:*:*:*:no\ndb:5433:*:carol:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .unwrap();
        let path = file.to_str().unwrap().to_owned();
        let env = move |k: &str| (k == "PGPASSFILE").then(|| path.clone());
        let url = PgUrl::parse("postgresql://carol@db:5433/x", &env).unwrap();
        assert_eq!(url.password.as_deref(), Some("pa:ss"));
        let url = PgUrl::parse("postgresql://dave@db:5433/x", &env).unwrap();
        assert_eq!(url.password.as_deref(), Some("fallback"));
    }

    #[test]
    fn redaction_drops_every_password() {
        assert_eq!(
            redact("postgresql://u:secret@h:1/d?sslmode=require"),
            "postgresql://u@h:1/d?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://h/d?password=secret&schema=s"),
            "postgresql://h/d?schema=s"
        );
        assert_eq!(redact("postgresql://h/d?password=x"), "postgresql://h/d");
    }

    #[test]
    fn bad_urls_are_named_errors() {
        for (raw, reason) in [
            (
                "postgresql://u@h/d?sslmode=allow",
                "sslmode `allow` is not one of",
            ),
            (
                "postgresql://u@h:99999/d",
                "port `99999` is not a port number",
            ),
            (
                "postgresql://u@h/d?nope=1",
                "parameter `nope` is not supported",
            ),
            (
                "postgresql://u@h/d?schema=Bad-Name",
                "schema `Bad-Name` is not",
            ),
            ("postgresql://u:pw@h/d?x", "parameter `x` has no `=`"),
        ] {
            let err = PgUrl::parse(raw, &no_env).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(reason), "{text}");
            assert!(!text.contains("pw@"), "{text}");
        }
    }
}
