//! Measuring a local directory tree, for the two owners that report a
//! size: the local target (a generation's, for `gc`) and the embedded
//! store backend (its database's). Reads only, and follows no symbolic
//! link.

use std::fs;
use std::io;
use std::path::Path;

/// Total length of the files under `path` (its own length when it is not
/// a directory); a symbolic link counts as the link, not what it names.
/// The error names no path: the caller says what it was measuring.
pub fn tree_size(path: &Path) -> io::Result<u64> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in fs::read_dir(path)? {
        total += tree_size(&entry?.path())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::tree_size;
    use std::fs;

    #[test]
    fn a_tree_is_the_sum_of_its_files_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("gen");
        fs::create_dir_all(root.join("tls")).unwrap();
        fs::write(root.join("pgbackrest.conf"), [b'x'; 100]).unwrap();
        fs::write(root.join("tls/server.key"), [b'k'; 20]).unwrap();
        let big = dir.path().join("big");
        fs::write(&big, [0; 5000]).unwrap();
        std::os::unix::fs::symlink(&big, root.join("link")).unwrap();
        let link = fs::symlink_metadata(root.join("link")).unwrap().len();
        assert_eq!(tree_size(&root).unwrap(), 120 + link);
        assert_eq!(tree_size(&big).unwrap(), 5000);
        let err = tree_size(&dir.path().join("absent")).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }
}
