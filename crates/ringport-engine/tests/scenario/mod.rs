//! Shared by the differential scenario tests: a scenario is written once
//! and expanded for the kernel (through the `io-uring` crate) and for
//! ringport, whose API has the same shape; the CQE streams must match.

/// CQEs as (user_data, res, flags).
pub type Cqes = Vec<(u64, i32, u32)>;

macro_rules! scenario {
    ($name:ident, |$ring:ident, $c:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            pub fn kernel() -> Result<Cqes, String> {
                use io_uring as $c;
                let mut $ring = $c::IoUring::new(16).map_err(|e| e.to_string())?;
                Ok($body)
            }
            pub fn ringport() -> Result<Cqes, String> {
                use ringport_engine as $c;
                let mut $ring = $c::IoUring::new(16).map_err(|e| e.to_string())?;
                Ok($body)
            }
        }
        #[test]
        fn $name() {
            let k = match $name::kernel() {
                Ok(k) => k,
                Err(e) => {
                    println!("SKIPPED {}: the kernel's io_uring is unavailable ({e})", stringify!($name));
                    return;
                }
            };
            let r = $name::ringport().expect("ringport ring");
            println!("{}: kernel {:?}", stringify!($name), k);
            assert_eq!(r, k, "ringport vs kernel CQEs");
        }
    };
}

macro_rules! push {
    ($ring:ident, $($e:expr),+ $(,)?) => {{
        $(
            // SAFETY: every buffer an entry points at outlives its CQE.
            unsafe { $ring.submission().push(&$e).unwrap() };
        )+
    }};
}

/// Reaps until `n` CQEs arrived or 5 s passed.
macro_rules! reap {
    ($ring:ident, $n:expr) => {{
        let mut got: Cqes = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < $n && Instant::now() < deadline {
            let _ = $ring.submit_and_wait(1);
            got.extend($ring.completion().map(|c| (c.user_data(), c.result(), c.flags())));
        }
        got
    }};
}

/// Everything already posted, after a short settle.
#[allow(unused_macros)]
macro_rules! drain {
    ($ring:ident) => {{
        std::thread::sleep(Duration::from_millis(20));
        let _ = $ring.submit();
        $ring.completion().map(|c| (c.user_data(), c.result(), c.flags())).collect::<Cqes>()
    }};
}

