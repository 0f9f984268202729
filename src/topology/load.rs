//! Reading module files, following `imports`, and merging them like Nix
//! modules into one tree that remembers which file set every value.
//!
//! Merge laws: tables merge recursively; a scalar or array from the
//! importing file wins over an imported one; a later import wins over an
//! earlier one. This file owns all topology file IO and reports unreadable
//! files, bad TOML, missing imports and import cycles; it must not judge the
//! meaning of any key other than `imports`.

use super::fields::{describe, Problems};
use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

/// A merged value: a table of further nodes, or anything else.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Table(Table),
    Leaf(Leaf),
}

/// A merged table; `file` is the highest-priority module that defined it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Table {
    pub file: Rc<str>,
    pub entries: BTreeMap<String, Node>,
}

/// A scalar or array (arrays are never merged), with the file that set it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Leaf {
    pub file: Rc<str>,
    pub value: toml::Value,
}

impl Node {
    /// The module file this node came from.
    pub fn file(&self) -> &str {
        match self {
            Node::Table(t) => &t.file,
            Node::Leaf(l) => &l.file,
        }
    }
}

impl Table {
    /// Converts a parsed TOML table, marking every value with `file`.
    pub fn from_toml(file: &Rc<str>, table: toml::Table) -> Table {
        let entries = table
            .into_iter()
            .map(|(k, v)| {
                let node = match v {
                    toml::Value::Table(t) => Node::Table(Table::from_toml(file, t)),
                    value => Node::Leaf(Leaf {
                        file: file.clone(),
                        value,
                    }),
                };
                (k, node)
            })
            .collect();
        Table {
            file: file.clone(),
            entries,
        }
    }
}

/// Merges `over` onto `base`: tables recursively, anything else `over` wins.
pub(crate) fn merge(base: Table, over: Table) -> Table {
    let mut entries = base.entries;
    for (key, node) in over.entries {
        let merged = match (entries.remove(&key), node) {
            (Some(Node::Table(b)), Node::Table(o)) => Node::Table(merge(b, o)),
            (_, o) => o,
        };
        entries.insert(key, merged);
    }
    Table {
        file: over.file,
        entries,
    }
}

/// Why an import could not be loaded (reported by the importing file).
enum Failure {
    Unreadable(Unreadable),
    Cycle(String),
}

/// Why a module file could not be read.
enum Unreadable {
    Io(std::io::Error),
    /// A directory, FIFO, device or socket (named).
    NotRegular(&'static str),
    /// Larger than [`MAX_MODULE_BYTES`] (the size found).
    TooLarge(u64),
}

impl From<std::io::Error> for Unreadable {
    fn from(e: std::io::Error) -> Unreadable {
        Unreadable::Io(e)
    }
}

impl Unreadable {
    /// A readable reason, without the `(os error N)` noise.
    fn reason(&self) -> String {
        match self {
            Unreadable::Io(e) => io_reason(e),
            Unreadable::NotRegular(kind) => format!("not a regular file ({kind})"),
            Unreadable::TooLarge(size) => format!(
                "larger than {} MiB ({size} bytes); a module is a few KiB of TOML",
                MAX_MODULE_BYTES >> 20
            ),
        }
    }
}

/// The largest module read: a 256-cell topology written out cell by cell
/// is about 100 KiB. Anything bigger is not a topology.
const MAX_MODULE_BYTES: u64 = 4 << 20;

/// Reads a module: a regular file of at most [`MAX_MODULE_BYTES`]. Opened
/// without blocking (a FIFO would wait for a writer forever) and judged by
/// the opened file itself, so a swap between check and read changes nothing.
fn read_module(path: &Path) -> Result<String, Unreadable> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(Unreadable::NotRegular(if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a file"
        }));
    }
    if meta.len() > MAX_MODULE_BYTES {
        return Err(Unreadable::TooLarge(meta.len()));
    }
    let mut text = String::new();
    // The file may grow after the size check: read one byte past the cap.
    file.take(MAX_MODULE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_MODULE_BYTES {
        return Err(Unreadable::TooLarge(text.len() as u64));
    }
    Ok(text)
}

struct Loader<'p> {
    problems: &'p mut Problems,
    /// The import chain being loaded: (canonical path, display name).
    stack: Vec<(PathBuf, String)>,
    /// Modules already loaded (a diamond import is read once).
    done: HashMap<PathBuf, Option<Table>>,
}

/// Reads the module at `root` and everything it imports, merged. Returns
/// `None` when nothing usable could be read; problems go to `problems`.
pub(crate) fn load_tree(root: &Path, problems: &mut Problems) -> Option<Table> {
    let display = root.display().to_string();
    let mut loader = Loader {
        problems,
        stack: Vec::new(),
        done: HashMap::new(),
    };
    match loader.module(root, display.clone()) {
        Ok(table) => table,
        Err(Failure::Unreadable(e)) => {
            loader.problems.push(
                &display,
                "",
                format!("cannot read the file: {}", e.reason()),
            );
            None
        }
        Err(Failure::Cycle(_)) => unreachable!("the root cannot close a cycle"),
    }
}

impl Loader<'_> {
    /// Loads one module and its imports; `Ok(None)` when it was reported.
    fn module(&mut self, path: &Path, display: String) -> Result<Option<Table>, Failure> {
        let canonical = path
            .canonicalize()
            .map_err(|e| Failure::Unreadable(e.into()))?;
        if let Some(pos) = self.stack.iter().position(|(c, _)| *c == canonical) {
            let mut chain: Vec<&str> = self.stack[pos..].iter().map(|(_, d)| d.as_str()).collect();
            chain.push(&display);
            return Err(Failure::Cycle(chain.join(" -> ")));
        }
        if let Some(done) = self.done.get(&canonical) {
            return Ok(done.clone());
        }
        let text = read_module(path).map_err(Failure::Unreadable)?;
        let mut parsed: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                self.problems.push(&display, "", toml_error(&text, &e));
                self.done.insert(canonical, None);
                return Ok(None);
            }
        };
        let imports = parsed.remove("imports");
        let file: Rc<str> = display.as_str().into();
        self.stack.push((canonical.clone(), display.clone()));
        let mut merged = Table {
            file: file.clone(),
            entries: BTreeMap::new(),
        };
        for (i, import) in self.import_list(&display, imports).into_iter().enumerate() {
            let Some(import) = import else { continue };
            let key = format!("imports[{i}]");
            let real = path.parent().unwrap_or(Path::new("")).join(&import);
            let shown = normalize(
                &Path::new(&display)
                    .parent()
                    .unwrap_or(Path::new(""))
                    .join(&import),
            );
            match self.module(&real, shown.clone()) {
                Ok(Some(t)) => merged = merge(merged, t),
                Ok(None) => {}
                Err(Failure::Unreadable(e)) => {
                    let resolved = if shown == import {
                        String::new()
                    } else {
                        format!(" (`{shown}`)")
                    };
                    self.problems.push(
                        &display,
                        &key,
                        format!(
                            "cannot read the import `{import}`{resolved}: {}",
                            e.reason()
                        ),
                    )
                }
                Err(Failure::Cycle(chain)) => {
                    self.problems
                        .push(&display, &key, format!("import cycle: {chain}"))
                }
            }
        }
        self.stack.pop();
        let table = merge(merged, Table::from_toml(&file, parsed));
        self.done.insert(canonical, Some(table.clone()));
        Ok(Some(table))
    }

    /// The `imports` array as strings; `None` entries were reported.
    fn import_list(&mut self, display: &str, imports: Option<toml::Value>) -> Vec<Option<String>> {
        let expected = "an array of module paths (strings)";
        match imports {
            None => Vec::new(),
            Some(toml::Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    toml::Value::String(s) if !s.is_empty() && !s.contains('\0') => Some(s),
                    other => {
                        self.problems.push(
                            display,
                            &format!("imports[{i}]"),
                            format!("expected a module path, found {}", describe(&other)),
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.problems.push(
                    display,
                    "imports",
                    format!("expected {expected}, found {}", describe(&other)),
                );
                Vec::new()
            }
        }
    }
}

/// `a/./b/../c` -> `a/c`, keeping leading `..` (display only: the file is
/// read through the path as joined).
fn normalize(path: &Path) -> String {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect::<PathBuf>().display().to_string()
}

/// A readable reason for an IO error, without the `(os error N)` noise.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// `invalid TOML at line L, column C: message`.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("invalid TOML at line {line}, column {column}: {message}")
        }
        None => format!("invalid TOML: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn table(file: &str, text: &str) -> Table {
        Table::from_toml(&Rc::from(file), text.parse().expect("test TOML"))
    }

    fn plain(t: &Table) -> toml::Table {
        t.entries
            .iter()
            .map(|(k, n)| {
                let v = match n {
                    Node::Table(t) => toml::Value::Table(plain(t)),
                    Node::Leaf(l) => l.value.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }

    #[test]
    fn the_importing_file_wins_and_tables_merge() {
        let base = table("base.toml", "a = 1\nlist = [1, 2]\n[t]\nx = 1\ny = 2\n");
        let over = table("top.toml", "a = 2\nlist = [3]\n[t]\ny = 3\nz = 4\n");
        let m = merge(base, over);
        let expect: toml::Table = "a = 2\nlist = [3]\n[t]\nx = 1\ny = 3\nz = 4\n"
            .parse()
            .unwrap();
        assert_eq!(plain(&m), expect);
        let Node::Table(t) = &m.entries["t"] else {
            panic!()
        };
        assert_eq!(t.entries["x"].file(), "base.toml");
        assert_eq!(t.entries["y"].file(), "top.toml");
    }

    #[test]
    fn a_scalar_replaces_a_table_and_back() {
        let m = merge(table("a", "[t]\nx = 1\n"), table("b", "t = 5\n"));
        assert_eq!(plain(&m), "t = 5\n".parse().unwrap());
        let m = merge(table("a", "t = 5\n"), table("b", "[t]\nx = 1\n"));
        assert_eq!(plain(&m), "[t]\nx = 1\n".parse().unwrap());
    }

    #[test]
    fn normalize_keeps_leading_parents() {
        assert_eq!(normalize(Path::new("a/./b/../c.toml")), "a/c.toml");
        assert_eq!(normalize(Path::new("../x/../y.toml")), "../y.toml");
        assert_eq!(normalize(Path::new("/m/../n.toml")), "/n.toml");
    }

    #[test]
    fn toml_errors_name_line_and_column() {
        let text = "a = 1\nb = \n";
        let e = text.parse::<toml::Table>().unwrap_err();
        assert!(toml_error(text, &e).starts_with("invalid TOML at line 2, column"));
    }

    /// Tables whose keys decide the kind of value (`a`-`c` leaves, `t`-`v`
    /// tables), so merges never replace a table by a scalar: that case is
    /// "the later one wins" and not associative, and the loader only folds
    /// left anyway.
    fn small_table() -> impl Strategy<Value = toml::Table> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(toml::Value::Integer),
            "[a-c]{0,2}".prop_map(toml::Value::String),
        ];
        let leaves = prop::collection::btree_map("[a-c]", leaf, 0..3);
        leaves
            .prop_recursive(2, 12, 3, |inner| {
                (
                    inner.clone(),
                    prop::collection::btree_map("[t-v]", inner, 0..3),
                )
                    .prop_map(|(mut l, t)| {
                        l.extend(
                            t.into_iter()
                                .map(|(k, v)| (k, toml::Value::Table(v.into_iter().collect()))),
                        );
                        l
                    })
            })
            .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        #[test]
        fn merge_is_associative_and_idempotent(a in small_table(), b in small_table(), c in small_table()) {
            let t = |f: &str, x: &toml::Table| Table::from_toml(&Rc::from(f), x.clone());
            let left = merge(merge(t("a", &a), t("b", &b)), t("c", &c));
            let right = merge(t("a", &a), merge(t("b", &b), t("c", &c)));
            prop_assert_eq!(plain(&left), plain(&right));
            prop_assert_eq!(plain(&merge(t("a", &a), t("a", &a))), a.clone());
            prop_assert_eq!(plain(&merge(Table::default(), t("a", &a))), a);
        }

        #[test]
        fn every_top_level_leaf_of_the_importer_wins(a in small_table(), b in small_table()) {
            let m = merge(Table::from_toml(&Rc::from("a"), a), Table::from_toml(&Rc::from("b"), b.clone()));
            for (k, v) in &b {
                if !v.is_table() {
                    prop_assert_eq!(&plain(&m)[k], v);
                    prop_assert_eq!(m.entries[k].file(), "b");
                }
            }
        }
    }
}
