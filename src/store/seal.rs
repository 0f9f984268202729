//! Sealing private keys at rest with age (SPEC §11): recipients, identities
//! and the two primitives, [`seal`] and [`unseal`].
//!
//! A sealed store keeps every private key as an age file encrypted to the
//! store's X25519 recipients (`age1…`); whoever holds one of the matching
//! identities (`AGE-SECRET-KEY-1…`, as `age-keygen` writes them) can read
//! it. This file knows the age format and nothing of where values live:
//! the store decides what to seal ([`is_private_key`]) and where to keep it.
//! Plaintext keys it hands back are [`Zeroizing`], wiped when dropped.

use super::Error;
use age::x25519;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use zeroize::{Zeroize, Zeroizing};

/// The set of age X25519 recipients a store is sealed to: sorted,
/// without duplicates, never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipients(Vec<x25519::Recipient>);

impl Recipients {
    /// Parses recipients given on the command line (`--recipient`) and in
    /// recipients files (one `age1…` per line; `#` comments and blank lines
    /// are skipped, as age's own `--recipients-file` does).
    pub fn parse(given: &[String], files: &[PathBuf]) -> Result<Recipients, Error> {
        let mut all = Vec::new();
        for text in given {
            all.push(parse_recipient(text.trim(), "given with `--recipient`")?);
        }
        for path in files {
            let text =
                std::fs::read_to_string(path).map_err(Error::io("read recipients file", path))?;
            let before = all.len();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let origin = format!("on line {} of `{}`", n + 1, path.display());
                all.push(parse_recipient(line, &origin)?);
            }
            if all.len() == before {
                return Err(Error::NoRecipients {
                    origin: format!("recipients file `{}` lists none", path.display()),
                });
            }
        }
        Recipients::new(all).ok_or_else(|| Error::NoRecipients {
            origin: "none was given".into(),
        })
    }

    /// Reads back a list the store recorded (see [`Recipients::to_strings`]).
    pub(super) fn from_recorded(list: &[String], store: &str) -> Result<Recipients, Error> {
        let parsed = list
            .iter()
            .map(|s| x25519::Recipient::from_str(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                Error::corrupt(store, "seal record", format!("a recipient is bad: {e}"))
            })?;
        Recipients::new(parsed)
            .ok_or_else(|| Error::corrupt(store, "seal record", "it lists no recipient"))
    }

    fn new(mut list: Vec<x25519::Recipient>) -> Option<Recipients> {
        list.sort_by_cached_key(|r| r.to_string());
        list.dedup();
        (!list.is_empty()).then_some(Recipients(list))
    }

    /// The recipients as `age1…` strings, in order.
    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(|r| r.to_string()).collect()
    }

    /// Whether `recipient` is one of them.
    pub fn contains(&self, recipient: &x25519::Recipient) -> bool {
        self.0.contains(recipient)
    }
}

impl fmt::Display for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_strings().join(", "))
    }
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipients({self})")
    }
}

fn parse_recipient(text: &str, origin: &str) -> Result<x25519::Recipient, Error> {
    x25519::Recipient::from_str(text).map_err(|reason| Error::Recipient {
        value: text.chars().take(100).collect(),
        origin: origin.to_owned(),
        reason: if text.starts_with("AGE-SECRET-KEY-") {
            "it is a secret identity, not a recipient: give its public key, \
             `age-keygen -y FILE` prints it"
        } else if text.starts_with("ssh-") {
            "SSH keys are not supported: give an age X25519 recipient (`age1…`)"
        } else {
            reason
        },
    })
}

/// The age identities of an identity file (`--identity`,
/// `PGBR_IDENTITY_FILE`). Its `Debug` never shows a key.
pub struct Identity {
    path: PathBuf,
    keys: Vec<x25519::Identity>,
}

impl Identity {
    /// Loads an identity file as `age-keygen` writes it: `#` comments,
    /// blank lines and one or more `AGE-SECRET-KEY-1…` lines. Errors name
    /// the file and line, never the line's content.
    pub fn load(path: &Path) -> Result<Identity, Error> {
        let mut text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(Error::io("read identity file", path))?,
        );
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = x25519::Identity::from_str(line).map_err(|_| Error::IdentityLine {
                path: path.to_owned(),
                line: n + 1,
            })?;
            keys.push(key);
        }
        text.zeroize();
        if keys.is_empty() {
            return Err(Error::IdentityEmpty {
                path: path.to_owned(),
            });
        }
        Ok(Identity {
            path: path.to_owned(),
            keys,
        })
    }

    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public keys (`age1…`) of its identities.
    pub fn public_keys(&self) -> Vec<x25519::Recipient> {
        self.keys.iter().map(x25519::Identity::to_public).collect()
    }

    /// Whether one of its identities is among `recipients`.
    pub fn matches(&self, recipients: &Recipients) -> bool {
        self.public_keys().iter().any(|k| recipients.contains(k))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("path", &self.path)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// Whether `content` holds a PEM private key (PKCS#8, SEC1, PKCS#1 or an
/// encrypted one): such content is sealed in a sealed store, whoever
/// stores it.
pub fn is_private_key(content: &[u8]) -> bool {
    content.split(|b| *b == b'\n').any(|line| {
        line.starts_with(b"-----BEGIN ") && line.trim_ascii_end().ends_with(b"PRIVATE KEY-----")
    })
}

/// Encrypts `plain` to every recipient (binary age format).
pub(super) fn seal(plain: &[u8], recipients: &Recipients) -> Result<Vec<u8>, std::io::Error> {
    let list = recipients.0.iter().map(|r| r as &dyn age::Recipient);
    let encryptor = age::Encryptor::with_recipients(list).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(plain.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(plain)?;
    writer.finish()?;
    Ok(out)
}

/// Why an age file did not decrypt.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum UnsealError {
    /// None of the identities is a recipient of it.
    NotARecipient,
    /// It is damaged (the reason, from age).
    Damaged(String),
}

/// Decrypts an age file written by [`seal`] with one of `identity`'s keys.
pub(super) fn unseal(
    sealed: &[u8],
    identity: &Identity,
) -> Result<Zeroizing<Vec<u8>>, UnsealError> {
    let decryptor =
        age::Decryptor::new_buffered(sealed).map_err(|e| UnsealError::Damaged(e.to_string()))?;
    let keys = identity.keys.iter().map(|k| k as &dyn age::Identity);
    let mut reader = decryptor.decrypt(keys).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => UnsealError::NotARecipient,
        other => UnsealError::Damaged(other.to_string()),
    })?;
    let mut plain = Zeroizing::new(Vec::new());
    reader
        .read_to_end(&mut plain)
        .map_err(|e| UnsealError::Damaged(e.to_string()))?;
    Ok(plain)
}

/// Checks that `sealed` starts with a well-formed age header (without an
/// identity, that is all that can be checked).
pub(super) fn check_sealed(sealed: &[u8]) -> Result<(), String> {
    age::Decryptor::new_buffered(sealed)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
pub(super) mod testutil {
    //! Identities written to files, as `age-keygen` would.

    use super::*;
    use age::secrecy::ExposeSecret;

    /// A fresh identity written to `dir/name`, and its recipient string.
    pub fn identity_file(dir: &Path, name: &str) -> (PathBuf, String) {
        let key = x25519::Identity::generate();
        let path = dir.join(name);
        let public = key.to_public().to_string();
        let text = format!(
            "# created: 2026-11-30T12:00:00Z\n# public key: {public}\n{}\n",
            key.to_string().expose_secret()
        );
        std::fs::write(&path, text).unwrap();
        (path, public)
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::identity_file;
    use super::*;

    fn recipients(list: &[&str]) -> Recipients {
        let given: Vec<String> = list.iter().map(|s| (*s).to_owned()).collect();
        Recipients::parse(&given, &[]).unwrap()
    }

    #[test]
    fn sealed_bytes_open_with_any_recipient_identity_only() {
        let dir = tempfile::tempdir().unwrap();
        let (alice, alice_pub) = identity_file(dir.path(), "alice");
        let (bob, bob_pub) = identity_file(dir.path(), "bob");
        let (carol, _) = identity_file(dir.path(), "carol");
        let plain = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n";
        let sealed = seal(plain, &recipients(&[&alice_pub, &bob_pub])).unwrap();
        assert!(!sealed.windows(12).any(|w| w == b"MIGHAgEAMBMG"));
        for who in [&alice, &bob] {
            let id = Identity::load(who).unwrap();
            assert_eq!(&unseal(&sealed, &id).unwrap()[..], plain);
        }
        let stranger = Identity::load(&carol).unwrap();
        assert_eq!(
            unseal(&sealed, &stranger).unwrap_err(),
            UnsealError::NotARecipient
        );
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(
            unseal(&damaged, &Identity::load(&alice).unwrap()),
            Err(UnsealError::Damaged(_))
        ));
    }

    #[test]
    fn recipients_are_sorted_deduplicated_and_read_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let (_, a) = identity_file(dir.path(), "a");
        let (_, b) = identity_file(dir.path(), "b");
        let file = dir.path().join("team.txt");
        std::fs::write(&file, format!("# the team\n\n{b}\n  {a}  \n")).unwrap();
        let parsed = Recipients::parse(std::slice::from_ref(&a), &[file]).unwrap();
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(parsed.to_strings(), want);
        assert_eq!(Recipients::from_recorded(&want, "s").unwrap(), parsed);
    }

    #[test]
    fn bad_recipients_say_what_and_where() {
        let dir = tempfile::tempdir().unwrap();
        let (_, good) = identity_file(dir.path(), "a");
        let err = Recipients::parse(&["age1nope".into()], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "parse age recipient `age1nope` given with `--recipient`: invalid Bech32 encoding"
        );
        let file = dir.path().join("r.txt");
        std::fs::write(&file, format!("{good}\nAGE-SECRET-KEY-1XYZ\n")).unwrap();
        let err = Recipients::parse(&[], std::slice::from_ref(&file)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("on line 2 of `{}`", file.display()))
                && text.contains("it is a secret identity, not a recipient"),
            "{text}"
        );
        std::fs::write(&file, "# nobody\n").unwrap();
        let err = Recipients::parse(&[], std::slice::from_ref(&file)).unwrap_err();
        assert!(matches!(err, Error::NoRecipients { .. }), "{err:?}");
        assert!(matches!(
            Recipients::parse(&[], &[]).unwrap_err(),
            Error::NoRecipients { .. }
        ));
        let err = Recipients::parse(&["ssh-ed25519 AAAA".into()], &[]).unwrap_err();
        assert!(
            err.to_string().contains("SSH keys are not supported"),
            "{err}"
        );
    }

    #[test]
    fn identity_files_load_and_bad_lines_are_named_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let (path, public) = identity_file(dir.path(), "id");
        let id = Identity::load(&path).unwrap();
        assert_eq!(id.public_keys()[0].to_string(), public);
        assert!(id.matches(&recipients(&[&public])));
        assert!(!format!("{id:?}").contains("AGE-SECRET-KEY"));

        let bad = dir.path().join("bad");
        std::fs::write(&bad, "# comment\nAGE-SECRET-KEY-1SECRETSTUFF\n").unwrap();
        let err = Identity::load(&bad).unwrap_err();
        assert!(
            matches!(err, Error::IdentityLine { line: 2, .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("SECRETSTUFF"));

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "# nothing\n").unwrap();
        assert!(matches!(
            Identity::load(&empty).unwrap_err(),
            Error::IdentityEmpty { .. }
        ));
        assert!(matches!(
            Identity::load(&dir.path().join("missing")).unwrap_err(),
            Error::Io(_)
        ));
    }

    #[test]
    fn private_keys_are_recognized_by_their_pem_label() {
        for label in [
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "RSA PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
        ] {
            let pem = format!("-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
            assert!(is_private_key(pem.as_bytes()), "{label}");
        }
        assert!(!is_private_key(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
        ));
        assert!(!is_private_key(b"[global]\nrepo1-path=/x\n"));
    }
}
