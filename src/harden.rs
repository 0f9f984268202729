//! What the process does to itself before any command runs: no core dumps.
//!
//! pgbr holds the CA key and every leaf key in memory while it issues and
//! deploys; a crash with core dumps on writes them into `./core` (or hands
//! them to a system collector). The core-size limit goes to 0 (inherited by
//! hooks, which never need the keys either) and the process is marked not
//! dumpable, which also covers a `core_pattern` pipe and keeps other
//! processes of the same user from reading its memory through ptrace or
//! `/proc/<pid>/mem`. Key buffers are zeroed on drop ([`crate::pki::SecretPem`]).

use nix::sys::resource::{setrlimit, Resource};

/// Turns core dumps off for this process; an error names what failed.
pub fn no_core_dumps() -> nix::Result<()> {
    setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
    nix::sys::prctl::set_dumpable(false)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dumps_are_off_after_hardening() {
        super::no_core_dumps().unwrap();
        assert!(!nix::sys::prctl::get_dumpable().unwrap());
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        assert_eq!((soft, hard), (0, 0));
    }

    #[test]
    fn key_buffers_are_zeroed_on_drop() {
        fn zeroed_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroed_on_drop::<crate::pki::SecretPem>();
    }
}
