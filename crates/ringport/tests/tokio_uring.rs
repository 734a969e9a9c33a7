//! tokio-uring, unchanged, after one line: `ringport::install()`. Its
//! runtime puts the ring fd in tokio's epoll (`AsyncFd`), opens, reads,
//! writes, syncs and closes files, and accepts, connects, sends and receives
//! over loopback TCP, all through io_uring. The kernel is kept out
//! with a Docker-like filter that makes io_uring fail with EPERM, so every
//! call here is served by ringport. (Its own binary: interception is
//! process-wide and cannot be undone.)

#[test]
fn tokio_uring_files_and_tcp_under_install() {
    // The container's filter first: io_uring → EPERM.
    let deny = ringport_preload::filter::deny_io_uring_program(libc::EPERM as u16);
    assert_eq!(ringport_preload::filter::install_program(&deny, true), 0);
    ringport::install().expect("ringport::install");

    let dir = std::env::temp_dir().join(format!("ringport-tokio-uring-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("src");
    std::fs::write(&src, b"hello from a file").unwrap();
    let dst = dir.join("dst");
    tokio_uring::start(async {
        let f = tokio_uring::fs::File::open(&src).await.expect("open");
        let (n, buf) = f.read_at(vec![0u8; 64], 0).await;
        let n = n.expect("read_at");
        assert_eq!(&buf[..n], b"hello from a file");
        let (n, buf) = f.read_at(buf, 6).await;
        assert_eq!(&buf[..n.expect("read_at 6")], b"from a file");
        f.close().await.expect("close");

        let out = tokio_uring::fs::File::create(&dst).await.expect("create");
        let (n, _) = out.write_at(b"written by tokio-uring".to_vec(), 0).submit().await;
        assert_eq!(n.expect("write_at"), 22);
        out.sync_all().await.expect("sync_all");
        out.close().await.expect("close");
        // Many reads in flight at once, completed out of order by the engine.
        let f = tokio_uring::fs::File::open(&src).await.expect("open again");
        let f = std::rc::Rc::new(f);
        let tasks: Vec<_> = (0..32u64)
            .map(|i| {
                let f = f.clone();
                tokio_uring::spawn(async move {
                    let (n, buf) = f.read_at(vec![0u8; 1], i % 17).await;
                    assert_eq!(n.expect("read_at"), 1);
                    buf[0]
                })
            })
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), b"hello from a file"[i % 17]);
        }

        // An echo server and a client on 127.0.0.1.
        let listener = tokio_uring::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
        let addr = listener.local_addr().expect("local_addr");
        let server = tokio_uring::spawn(async move {
            let (conn, _) = listener.accept().await.expect("accept");
            let mut buf = vec![0u8; 64];
            loop {
                let (n, b) = conn.read(buf).await;
                let n = n.expect("server read");
                if n == 0 {
                    break;
                }
                let (w, b) = conn.write_all(b[..n].to_vec()).await;
                w.expect("server write");
                buf = b;
                buf.resize(64, 0);
            }
        });
        let client = tokio_uring::net::TcpStream::connect(addr).await.expect("connect");
        for round in 0..3u8 {
            let msg = vec![b'a' + round; 10];
            let (w, _) = client.write_all(msg.clone()).await;
            w.expect("client write");
            let mut got = Vec::new();
            while got.len() < msg.len() {
                let (n, b) = client.read(vec![0u8; 64]).await;
                let n = n.expect("client read");
                assert!(n > 0, "server closed early");
                got.extend_from_slice(&b[..n]);
            }
            assert_eq!(got, msg);
        }
        client.shutdown(std::net::Shutdown::Write).expect("shutdown");
        server.await.unwrap();
    });
    assert_eq!(std::fs::read(&dst).unwrap(), b"written by tokio-uring");
    let _ = std::fs::remove_dir_all(&dir);
}
