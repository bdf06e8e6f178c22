//! Graceful shutdown on SIGTERM: stop accepting, `421 4.3.2` to the next command, messages in
//! flight finish and stay stored, exit status 0.

mod common;

use common::{Env, Smtp, message, wait_exit};
use std::time::Duration;

/// SIGTERM without relying on a `kill` binary being installed.
#[allow(unsafe_code)]
fn sigterm(pid: u32) {
    // SAFETY: kill(2) with a child's pid and a valid signal number has no memory effects.
    let sent = unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
}

#[test]
fn idle_session_gets_421_and_server_exits_cleanly() {
    let env = Env::new("shutdown-idle", "");
    env.setup(&["alice@example.test"]);
    let mut server = env.serve();
    let mut c = Smtp::connect(env.smtp).unwrap();
    assert!(c.reply().starts_with("220"));
    assert!(c.command("EHLO client.test").starts_with("250"));
    sigterm(server.id());
    assert!(
        c.reply().starts_with("421 4.3.2"),
        "idle session was not told"
    );
    let status = wait_exit(&mut server, Duration::from_secs(10)).expect("server exits");
    assert!(status.success(), "{status:?}");
    assert!(
        Smtp::connect(env.smtp).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn message_in_flight_completes_then_421() {
    let env = Env::new("shutdown-inflight", "");
    env.setup(&["alice@example.test"]);
    let mut server = env.serve();
    let mut c = Smtp::connect(env.smtp).unwrap();
    assert!(c.reply().starts_with("220"));
    assert!(c.command("EHLO client.test").starts_with("250"));
    assert!(c.command("MAIL FROM:<a@remote.test>").starts_with("250"));
    assert!(c.command("RCPT TO:<alice@example.test>").starts_with("250"));
    assert!(c.command("DATA").starts_with("354"));
    let body = message("<in-flight@test>", 8192);
    let (first, second) = body.split_at(4096);
    assert!(c.send(first));
    sigterm(server.id());
    std::thread::sleep(Duration::from_millis(300));
    assert!(c.send(second) && c.send(b".\r\n"));
    assert!(
        c.reply().starts_with("250 2.0.0"),
        "the message in flight was not accepted"
    );
    assert!(c.command("NOOP").starts_with("421 4.3.2"));
    let status = wait_exit(&mut server, Duration::from_secs(10)).expect("server exits");
    assert!(status.success(), "{status:?}");
    assert_eq!(env.message_ids("alice@example.test"), ["<in-flight@test>"]);
}
