//! Cells on their own hosts (SPEC §9), proven on real `sshd`s in network
//! and mount namespaces of their own ([`crate::hosts`]).

use crate::hosts::{Hosts, Sudo};
use std::path::Path;

/// The test hosts themselves: each answers over SSH with the generated
/// config, under its own address, and a file written on one host is seen
/// neither on the others nor on the machine running the test.
#[test]
fn test_hosts_are_separate_machines() {
    let mut hosts = Hosts::start(3);
    let cells = hosts.cells_dir().to_path_buf();
    for i in 0..hosts.len() {
        let file = cells.join(format!("written-on-{i}"));
        let cmd = format!(
            "ip -o -4 addr show dev eth0 && echo {i} > {} && ls {}",
            file.display(),
            cells.display()
        );
        let out = hosts.ssh(i, "root", &cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ssh to {}: {}",
            hosts.addr(i),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("inet {}/24", hosts.addr(i))),
            "{stdout}"
        );
        assert!(
            stdout.ends_with(&format!("written-on-{i}\n")),
            "only its own file: {stdout}"
        );
    }
    for i in 0..hosts.len() {
        for j in 0..hosts.len() {
            let seen = hosts.read(j, &cells.join(format!("written-on-{i}")));
            assert_eq!(
                seen.is_some(),
                i == j,
                "host {j} sees host {i}'s file: {seen:?}"
            );
        }
        assert!(
            !cells.join(format!("written-on-{i}")).exists(),
            "the machine sees it"
        );
    }
    // Each host's home is its own too (caches a remote tool may keep).
    hosts.sh(0, "echo mine > /root/in-home");
    assert!(hosts.read(1, Path::new("/root/in-home")).is_none());
    assert!(!Path::new("/root/in-home").exists());

    // Hosts only reach the test's addresses: no route to the machine's.
    let out = hosts.on(0, &["ip", "-4", "route"]);
    let routes = String::from_utf8_lossy(&out.stdout);
    assert!(!routes.contains("default"), "{routes}");

    // A changed host key is refused; trusting it again lets ssh in.
    hosts.change_host_key(1);
    let out = hosts.ssh(1, "root", "true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    hosts.trust_host_key(1);
    assert!(hosts.ssh(1, "root", "true").status.success());

    // A host cut off the network times out.
    hosts.cut(2);
    let t = std::time::Instant::now();
    let out = std::process::Command::new("ssh")
        .arg("-F")
        .arg(hosts.ssh_config())
        .args([
            "-o",
            "ConnectTimeout=1",
            "-o",
            "BatchMode=yes",
            &hosts.addr(2).to_string(),
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    hosts.reconnect(2);
    assert!(hosts.ssh(2, "root", "true").status.success());

    // A crashed host keeps its files and comes back.
    hosts.crash(0);
    assert!(!hosts.ssh(0, "root", "true").status.success());
    hosts.boot(0);
    assert_eq!(hosts.read(0, &cells.join("written-on-0")).unwrap(), b"0\n");

    // Test users: on one host only, with or without passwordless sudo.
    let nopw = hosts.add_user(1, Sudo::Passwordless);
    let pw = hosts.add_user(1, Sudo::Password);
    let out = hosts.ssh(1, &nopw, "id -un && sudo -n -- id -un");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{nopw}\nroot\n"),
        "{out:?}"
    );
    let out = hosts.ssh(1, &pw, "sudo -n -- id -un");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("password is required"),
        "{err}"
    );
    assert!(
        !hosts.ssh(0, &nopw, "true").status.success(),
        "the user can log in elsewhere"
    );
}
