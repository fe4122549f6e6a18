//! SIGTERM: the server stops taking calls, and every call answered before it is in the store.
//! Its own test binary, because it sends SIGTERM to the test process (tokio's handler takes it).

mod support;

use std::time::Duration;

use support::*;
use veertien_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_every_call_record() {
    let ts = TestServer::start(|_| {}).await;
    let db = ts.db_path();
    let udp = ts.udp;
    let running = tokio::spawn(ts.server.run_until_signal());
    // Let the signal handlers install before anything else happens.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let c = Client::new(udp).await;
    let (fourteen, _, _) = unique_redirect_number();
    let uri = format!("sip:{fourteen}@127.0.0.1");
    const CALLS: usize = 300;
    for i in 0..CALLS {
        let branch = format!("z9hG4bK-s{i}");
        c.send(request("INVITE", &uri, &branch, &format!("s{i}"), c.port()).as_bytes()).await;
        let r = c.recv().await;
        assert_eq!(r.status(), 302);
        c.send(ack_for(&uri, &branch, &format!("s{i}"), c.port(), &to_tag(&r)).as_bytes()).await;
    }
    // SAFETY: plain libc calls; the signal goes to this process, where tokio handles it.
    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    let report = tokio::time::timeout(Duration::from_secs(30), running).await.unwrap().unwrap().unwrap();
    let rec = report.records.unwrap();
    assert_eq!(rec.written, CALLS as u64, "{rec:?}");
    assert_eq!(rec.dropped, 0);
    let store = Store::open(db.to_str().unwrap()).await.unwrap();
    assert_eq!(store.count_calls().await.unwrap(), CALLS as u64);
    // The SIP port is closed after shutdown: nothing answers any more.
    c.send(request("OPTIONS", "sip:127.0.0.1", "z9hG4bK-after", "after", c.port()).as_bytes()).await;
    assert!(c.recv_within(Duration::from_millis(500)).await.is_none());
}
