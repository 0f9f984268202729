//! The deployment layout of a cell (SPEC "Deployment layout"), in one place:
//! `<deploy_dir>/current -> generations/<N>`, each generation holding the
//! same four files. Everything that names one of these paths takes it from
//! here.

/// The rendered pgBackRest config.
pub const CONFIG: &str = "pgbackrest.conf";
/// The CA bundle (the current CA, then the previous one during a rotation).
pub const CA_BUNDLE: &str = "tls/ca.crt";
/// The cell's leaf certificate.
pub const SERVER_CERT: &str = "tls/server.crt";
/// The cell's leaf private key.
pub const SERVER_KEY: &str = "tls/server.key";

/// The files of a cell's generation, with their modes, in path order.
pub const FILES: [(&str, u32); 4] = [
    (CONFIG, 0o640),
    (CA_BUNDLE, 0o644),
    (SERVER_CERT, 0o644),
    (SERVER_KEY, 0o600),
];

/// The link naming the live generation, in the deploy dir.
pub const CURRENT: &str = "current";
/// The directory of the generations, in the deploy dir.
pub const GENERATIONS: &str = "generations";

/// What `current` points at for generation `n`: `generations/<n>`.
pub fn generation_dir(n: u64) -> String {
    format!("{GENERATIONS}/{n}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_are_in_path_order() {
        let paths: Vec<&str> = super::FILES.iter().map(|(p, _)| *p).collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted);
        assert_eq!(super::generation_dir(7), "generations/7");
    }
}
