//! Root-only tests of failure paths: clear errors, no leftover process or host mount.
//! A separate test binary with one test, so "no child processes left" is checkable.

mod common;

use common::*;
use runtime::{Error, ExitStatus, Stdio};

fn children() -> Vec<String> {
    let mut v = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap() {
        let c = std::fs::read_to_string(t.unwrap().path().join("children")).unwrap_or_default();
        v.extend(c.split_whitespace().map(String::from));
    }
    v
}

#[test]
fn failures_are_clear_and_leave_nothing() {
    if !is_root() {
        return;
    }
    let root = busybox_rootfs();
    let before = children();

    let err = runtime::spawn(spec(
        "/nonexistent/rootfs".as_ref(),
        "true",
        Stdio::null().unwrap(),
    ))
    .unwrap_err();
    assert!(matches!(err, Error::RootfsMissing { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "rootfs /nonexistent/rootfs: no such directory"
    );

    let cmd = |argv: &[&str]| {
        let mut s = spec(root.path(), "", Stdio::null().unwrap());
        s.argv = argv.iter().map(|s| s.to_string()).collect();
        s
    };
    let err = runtime::spawn(cmd(&["/bin/nosuch"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "exec /bin/nosuch: No such file or directory"
    );
    let err = runtime::spawn(cmd(&["nosuch", "arg"])).unwrap_err();
    assert_eq!(err.to_string(), "exec nosuch: No such file or directory");
    // A non-executable file: EACCES, as execvp would say.
    std::fs::write(root.path().join("bin/notexec"), "data").unwrap();
    let err = runtime::spawn(cmd(&["notexec"])).unwrap_err();
    assert_eq!(err.to_string(), "exec notexec: Permission denied");

    let mut s = cmd(&["true"]);
    s.cwd = Some("/does/not/exist".into());
    let err = runtime::spawn(s).unwrap_err();
    assert_eq!(
        err.to_string(),
        "chdir /does/not/exist: No such file or directory"
    );

    let mut s = cmd(&["true"]);
    s.netns_path = Some("/run/netns/rt-errors-missing".into());
    let err = runtime::spawn(s).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("open netns /run/netns/rt-errors-missing"),
        "{err}"
    );

    let mut s = cmd(&["true"]);
    s.resolv_file = Some("/nonexistent/resolv.conf".into());
    assert!(runtime::spawn(s).is_err());

    assert!(matches!(
        runtime::spawn(cmd(&[])),
        Err(Error::InvalidSpec(_))
    ));

    // No zombie or stray child, no mount of the rootfs on the host.
    assert_eq!(children(), before, "leftover child processes");
    assert!(!host_mountinfo().contains(root.path().to_str().unwrap()));

    // And the rootfs still works afterwards.
    let (st, _) = run(|stdio| spec(root.path(), "true", stdio));
    assert_eq!(st, ExitStatus::Exited(0));
}
