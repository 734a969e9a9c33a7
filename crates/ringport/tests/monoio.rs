//! monoio, unchanged, after one line: `ringport::install()`. Its io_uring
//! driver (no fallback: `IoUringDriver` is chosen explicitly) opens, writes,
//! syncs, reads, stats, renames and unlinks files, makes a directory, runs
//! timers (TIMEOUT and the EXT_ARG wait), is woken from another thread
//! through its eventfd READ, cancels an ACCEPT with ASYNC_CANCEL, and echoes
//! over loopback TCP on 127.0.0.1 and ::1. The kernel is kept out with a
//! Docker-like filter that makes io_uring fail with EPERM, so every call
//! here is served by ringport. (Its own binary: interception is process-wide
//! and cannot be undone.)

use monoio::io::{AsyncReadRentExt, AsyncWriteRentExt, Canceller, Splitable};
use monoio::net::{TcpListener, TcpStream};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// A future completed by another OS thread: the waker it calls is monoio's
/// cross-thread one (an eventfd write the ring's READ sees).
#[derive(Default)]
struct Remote(Arc<Mutex<(bool, Option<Waker>)>>);

impl Future for Remote {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut g = self.0.lock().unwrap();
        if g.0 {
            Poll::Ready(())
        } else {
            g.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

async fn echo_round_trips(listener: TcpListener) {
    let addr = listener.local_addr().expect("local_addr");
    let server = monoio::spawn(async move {
        let (conn, _) = listener.accept().await.expect("accept");
        let (mut rd, mut wr) = conn.into_split();
        let copied = monoio::io::copy(&mut rd, &mut wr).await.expect("server copy");
        assert_eq!(copied, 30);
    });
    let mut client = TcpStream::connect(addr).await.expect("connect");
    for round in 0..3u8 {
        let msg = vec![b'a' + round; 10];
        let (w, _) = client.write_all(msg.clone()).await;
        w.expect("client write");
        let (n, got) = client.read_exact(vec![0u8; msg.len()]).await;
        assert_eq!(n.expect("client read_exact"), msg.len());
        assert_eq!(got, msg);
    }
    drop(client);
    server.await;
}

#[test]
fn monoio_files_timers_wakeups_cancel_and_tcp_under_install() {
    let deny = ringport_preload::filter::deny_io_uring_program(libc::EPERM as u16);
    assert_eq!(ringport_preload::filter::install_program(&deny, true), 0);
    ringport::install().expect("ringport::install");

    let dir = std::env::temp_dir().join(format!("ringport-monoio-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rt = monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .with_entries(64)
        .build()
        .expect("monoio io_uring runtime");
    let d = dir.clone();
    rt.block_on(async move {
        // Files: create, write, sync, close; open, read, stat.
        let path = d.join("a");
        let f = monoio::fs::File::create(&path).await.expect("create");
        let (r, _) = f.write_all_at(b"written by monoio".to_vec(), 0).await;
        r.expect("write_all_at");
        f.sync_all().await.expect("sync_all");
        f.close().await.expect("close");
        let f = std::rc::Rc::new(monoio::fs::File::open(&path).await.expect("open"));
        let (n, buf) = f.read_at(vec![0u8; 64], 11).await;
        assert_eq!(&buf[..n.expect("read_at")], b"monoio");
        assert_eq!(f.metadata().await.expect("statx").len(), 17);
        // Many reads in flight at once.
        let tasks: Vec<_> = (0..32u64)
            .map(|i| {
                let f = f.clone();
                monoio::spawn(async move {
                    let (n, buf) = f.read_at(vec![0u8; 1], i % 17).await;
                    assert_eq!(n.expect("read_at"), 1);
                    buf[0]
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await, b"written by monoio"[i % 17]);
        }
        drop(f);
        monoio::fs::create_dir(d.join("sub")).await.expect("mkdirat");
        monoio::fs::rename(&path, d.join("sub/b")).await.expect("renameat");
        assert_eq!(monoio::fs::read(d.join("sub/b")).await.expect("read"), b"written by monoio");
        monoio::fs::remove_file(d.join("sub/b")).await.expect("unlinkat");
        monoio::fs::remove_dir(d.join("sub")).await.expect("unlinkat dir");
        assert!(!d.join("sub").exists());

        // Timers.
        let t0 = Instant::now();
        monoio::time::sleep(Duration::from_millis(30)).await;
        assert!(t0.elapsed() >= Duration::from_millis(30), "slept {:?}", t0.elapsed());
        let never = std::future::pending::<()>();
        assert!(monoio::time::timeout(Duration::from_millis(10), never).await.is_err());

        // A wake-up from another thread while the ring waits.
        let remote = Remote::default();
        let shared = remote.0.clone();
        let waker_thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            let mut g = shared.lock().unwrap();
            g.0 = true;
            if let Some(w) = g.1.take() {
                w.wake();
            }
        });
        let t0 = Instant::now();
        remote.await;
        assert!(t0.elapsed() < Duration::from_secs(10));
        waker_thread.join().unwrap();

        // An ACCEPT nobody connects to, cancelled (ASYNC_CANCEL).
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let canceller = Canceller::new();
        let handle = canceller.handle();
        let accept = monoio::spawn(async move { listener.cancelable_accept(handle).await.map(|_| ()) });
        monoio::time::sleep(Duration::from_millis(10)).await;
        canceller.cancel();
        let err = accept.await.expect_err("a cancelled accept fails");
        assert_eq!(err.raw_os_error(), Some(libc::ECANCELED), "{err}");

        // TCP echo on both loopbacks.
        echo_round_trips(TcpListener::bind("127.0.0.1:0").expect("bind v4")).await;
        match TcpListener::bind("[::1]:0") {
            Ok(l) => echo_round_trips(l).await,
            Err(e) => eprintln!("::1 unavailable ({e}): IPv6 echo skipped"),
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
