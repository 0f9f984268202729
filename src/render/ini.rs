//! A minimal INI writer that can only emit what pgBackRest parses: `#`
//! comment lines, `[section]` headers, `key=value` lines and blank lines.
//!
//! It owns the pgBackRest file rules (SPEC §1) so that callers cannot break
//! them: no `;` lines (a fatal parse error), no inline comments, no empty
//! values, no line breaks inside a key or value, no surrounding whitespace
//! (pgBackRest trims it away) and a key at most once per section. It does no
//! IO and knows nothing about which options exist.
//!
//! The topology validation has already rejected every value that could break
//! these rules, so a violation here is a bug in pgbr and panics. The cheap
//! per-line checks always run, because a line break in a value would inject
//! options; the duplicate-key check keeps a set of keys and so only runs
//! with debug assertions (every test renders through it).

/// Something that can be written as an option name.
pub trait IniKey {
    /// Appends the key's text to `out`.
    fn write_key(&self, out: &mut String);
}

/// Something that can be written as an option value.
pub trait IniValue {
    /// Appends the value's text to `out`.
    fn write_value(&self, out: &mut String);
}

impl IniKey for str {
    fn write_key(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl IniValue for str {
    fn write_value(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl IniValue for String {
    fn write_value(&self, out: &mut String) {
        out.push_str(self);
    }
}

impl IniValue for crate::topology::AbsPath {
    fn write_value(&self, out: &mut String) {
        out.push_str(self.as_str());
    }
}

macro_rules! integer_value {
    ($($t:ty),*) => {$(
        impl IniValue for $t {
            fn write_value(&self, out: &mut String) {
                push_decimal(out, *self as u64);
            }
        }
    )*};
}
integer_value!(u16, u32, u64, usize);

/// Appends `n` in decimal: the `fmt` machinery costs a quarter of the time
/// of rendering 256 cells.
pub(super) fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[start..]).expect("ascii digits"));
}

impl<T: IniValue + ?Sized> IniValue for &T {
    fn write_value(&self, out: &mut String) {
        (**self).write_value(out);
    }
}

impl<T: IniKey + ?Sized> IniKey for &T {
    fn write_key(&self, out: &mut String) {
        (**self).write_key(out);
    }
}

/// Builds an INI document line by line.
#[derive(Default)]
pub struct IniWriter {
    out: String,
    /// Whether a `[section]` header has been written (keys need one).
    in_section: bool,
    /// Keys of the current section, to catch a key written twice.
    #[cfg(debug_assertions)]
    keys: std::collections::HashSet<String>,
}

impl IniWriter {
    /// An empty document.
    pub fn new() -> IniWriter {
        IniWriter::default()
    }

    /// An empty document with room for `bytes` bytes of text.
    pub fn with_capacity(bytes: usize) -> IniWriter {
        IniWriter {
            out: String::with_capacity(bytes),
            ..IniWriter::default()
        }
    }

    /// `# text`, or a bare `#` for an empty `text`.
    ///
    /// Panics when `text` holds a line break.
    pub fn comment(&mut self, text: &str) {
        assert!(
            !text.contains(['\n', '\r']),
            "ini comment {text:?} holds a line break"
        );
        if text.is_empty() {
            self.out.push_str("#\n");
        } else {
            self.out.push_str("# ");
            self.out.push_str(text);
            self.out.push('\n');
        }
    }

    /// An empty line (pgBackRest skips it; it only helps human readers).
    pub fn blank(&mut self) {
        self.out.push('\n');
    }

    /// `[name]`, preceded by a blank line unless the document is empty or
    /// already ends with one. Starts a new set of keys.
    ///
    /// Panics unless `name` is `[a-z0-9_:-]+`.
    pub fn section(&mut self, name: &str) {
        assert!(
            !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b':')
                }),
            "ini section {name:?} is not [a-z0-9_:-]+"
        );
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
        self.out.push('[');
        self.out.push_str(name);
        self.out.push_str("]\n");
        self.in_section = true;
        #[cfg(debug_assertions)]
        self.keys.clear();
    }

    /// `key=value` in the current section.
    ///
    /// Panics when no section was started, when the key is not
    /// `[a-z0-9-]+` (every pgBackRest option name is), or when the value is
    /// empty, holds a control character or starts or ends with whitespace.
    /// With debug assertions, also panics when the section already has `key`.
    pub fn set(&mut self, key: impl IniKey, value: impl IniValue) {
        assert!(self.in_section, "ini key outside of a section");
        let key_start = self.out.len();
        key.write_key(&mut self.out);
        let key_end = self.out.len();
        self.out.push('=');
        value.write_value(&mut self.out);
        let value_start = key_end + 1;

        let written = &self.out[key_start..];
        let key = &written[..key_end - key_start];
        let value = &written[value_start - key_start..];
        // Branch-free folds: these checks run for every line of a 43 MB render.
        let key_ok = key.bytes().fold(true, |ok, b| {
            ok & (b.is_ascii_lowercase() | b.is_ascii_digit() | (b == b'-'))
        });
        let control = value.bytes().fold(false, |c, b| c | b.is_ascii_control());
        // Beyond ASCII, the topology's one validator decides (C1 controls,
        // U+0085, U+2028, U+2029); only values with such bytes pay for it.
        let wide = value.bytes().fold(false, |w, b| w | (b >= 0x80));
        let control = control || (wide && crate::topology::ini_unsafe_char(value).is_some());
        assert!(
            !key.is_empty() && key_ok,
            "ini key {key:?} is not [a-z0-9-]+"
        );
        // pgBackRest trims ASCII whitespace around values.
        let padded = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
        assert!(
            !value.is_empty()
                && !control
                && !padded(value.as_bytes().first())
                && !padded(value.as_bytes().last()),
            "ini value {value:?} of `{key}` is empty, holds a control character or is padded"
        );
        #[cfg(debug_assertions)]
        {
            let fresh = self.keys.insert(key.to_owned());
            debug_assert!(fresh, "ini key `{key}` written twice in one section");
        }
        self.out.push('\n');
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_comments_sections_and_keys() {
        let mut w = IniWriter::new();
        w.comment("generated");
        w.comment("");
        w.section("global");
        w.set("repo1-path", "/backup/repo");
        w.set("repo1-retention-full", 7u32);
        w.blank();
        w.set("tls-server-port", 8432u16);
        w.section("multigres");
        w.set(
            "pg1-path",
            crate::topology::AbsPath::new("/zone1/pg").unwrap(),
        );
        assert_eq!(
            w.finish(),
            "# generated\n#\n\n[global]\nrepo1-path=/backup/repo\nrepo1-retention-full=7\n\n\
             tls-server-port=8432\n\n[multigres]\npg1-path=/zone1/pg\n"
        );
    }

    #[test]
    fn first_section_has_no_leading_blank_line() {
        let mut w = IniWriter::new();
        w.section("global");
        assert_eq!(w.finish(), "[global]\n");
    }

    #[test]
    fn no_doubled_blank_line_before_a_section() {
        let mut w = IniWriter::new();
        w.comment("x");
        w.blank();
        w.section("global");
        assert_eq!(w.finish(), "# x\n\n[global]\n");
    }

    #[test]
    fn writes_integers_in_decimal() {
        let mut w = IniWriter::new();
        w.section("global");
        w.set("a", 0u16);
        w.set("b", 65535u16);
        w.set("c", u64::MAX);
        w.set("d", 10usize);
        assert_eq!(
            w.finish(),
            "[global]\na=0\nb=65535\nc=18446744073709551615\nd=10\n"
        );
    }

    #[test]
    fn same_key_in_different_sections_is_fine() {
        let mut w = IniWriter::new();
        w.section("global");
        w.set("start-fast", "y");
        w.section("multigres");
        w.set("start-fast", "n");
        assert!(w.finish().ends_with("start-fast=n\n"));
    }

    #[test]
    fn values_keep_hash_and_semicolon_inside() {
        // Neither starts a comment after `=`; pgBackRest keeps them verbatim.
        let mut w = IniWriter::new();
        w.section("global");
        w.set("tls-server-auth", "pgbackrest=*");
        w.set("repo1-path", "/a#b;c");
        assert!(w
            .finish()
            .ends_with("tls-server-auth=pgbackrest=*\nrepo1-path=/a#b;c\n"));
    }

    fn panics(f: impl FnOnce(&mut IniWriter) + std::panic::UnwindSafe) -> bool {
        std::panic::catch_unwind(|| {
            let mut w = IniWriter::new();
            w.section("global");
            f(&mut w);
        })
        .is_err()
    }

    #[test]
    fn rejects_empty_value() {
        assert!(panics(|w| w.set("repo1-path", "")));
    }

    #[test]
    fn rejects_line_breaks() {
        assert!(panics(|w| w.set("repo1-path", "/a\npg1-host=evil")));
        assert!(panics(|w| w.set("repo1-path", "/a\r")));
        assert!(panics(|w| w.set("repo1\n-path", "/a")));
        assert!(panics(|w| w.comment("a\nb")));
    }

    #[test]
    fn rejects_unicode_line_breaks_and_c1_controls() {
        assert!(panics(|w| w.set("repo1-path", "/a\u{85}b")));
        assert!(panics(|w| w.set("repo1-path", "/a\u{2028}b")));
        assert!(panics(|w| w.set("repo1-path", "/a\u{2029}b")));
        assert!(panics(|w| w.set("repo1-path", "/a\u{0b}b")));
        assert!(!panics(|w| w.set("repo1-path", "/données/é")));
    }

    #[test]
    fn rejects_padded_values() {
        assert!(panics(|w| w.set("repo1-path", " /a")));
        assert!(panics(|w| w.set("repo1-path", "/a ")));
        assert!(panics(|w| w.set("repo1-path", "/a\t")));
    }

    #[test]
    fn rejects_keys_that_are_not_option_names() {
        assert!(panics(|w| w.set("", "x")));
        assert!(panics(|w| w.set(";start-fast", "y")));
        assert!(panics(|w| w.set("#start-fast", "y")));
        assert!(panics(|w| w.set("start-fast=y", "y")));
        assert!(panics(|w| w.set("Start-Fast", "y")));
        assert!(panics(|w| w.set("start fast", "y")));
    }

    #[test]
    fn rejects_bad_section_names() {
        assert!(panics(|w| w.section("")));
        assert!(panics(|w| w.section("a]b")));
        assert!(panics(|w| w.section("a\nb")));
    }

    #[test]
    fn rejects_key_outside_section() {
        let result = std::panic::catch_unwind(|| {
            let mut w = IniWriter::new();
            w.set("start-fast", "y");
        });
        assert!(result.is_err());
    }

    #[test]
    #[cfg(debug_assertions)]
    fn rejects_repeated_key_in_a_section() {
        assert!(panics(|w| {
            w.set("start-fast", "y");
            w.set("start-fast", "n");
        }));
    }
}
