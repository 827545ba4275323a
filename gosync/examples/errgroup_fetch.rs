//! Fetch several pages in parallel and fail fast: the first error cancels the siblings, and
//! `wait` returns it. The second half collects results into a slice borrowed from the stack.
//!
//! Run: `cargo run -p gosync --example errgroup_fetch`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use gosync::x::{CancelToken, ErrGroup};

/// Serves `/slow` after 2 s, `/missing` as an error, anything else at once.
fn start_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let mut conn = conn;
                let mut path = String::new();
                let _ = BufReader::new(&conn).read_line(&mut path);
                let reply = match path.trim() {
                    "/slow" => {
                        thread::sleep(Duration::from_secs(2));
                        "200 slow page".to_string()
                    }
                    "/missing" => "404 not found".to_string(),
                    p => format!("200 page {p}"),
                };
                let _ = conn.write_all(reply.as_bytes());
            });
        }
    });
    port
}

/// Fetches `path`; polls `cancel` while waiting so a cancelled fetch stops early.
fn fetch(port: u16, path: &str, cancel: &CancelToken) -> Result<String, String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    writeln!(conn, "{path}").map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let mut body = Vec::new();
    loop {
        if cancel.is_cancelled() {
            return Err(format!("{path}: cancelled"));
        }
        let mut buf = [0u8; 1024];
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    match body.strip_prefix("200 ") {
        Some(page) => Ok(page.to_string()),
        None => Err(format!("{path}: {body}")),
    }
}

fn main() {
    let port = start_server();

    // 1. Fail fast: /missing fails, /slow notices the cancellation instead of taking 2 s.
    let t0 = Instant::now();
    let g = ErrGroup::new();
    for path in ["/a", "/slow", "/missing", "/b"] {
        let token = g.token();
        g.go(move || fetch(port, path, &token).map(|_| ()));
    }
    let err = g.wait().unwrap_err();
    println!("first error: {err:?} after {:?}", t0.elapsed());
    assert_eq!(err, "/missing: 404 not found");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the slow fetch was not cancelled"
    );

    // 2. Scoped: results land in a slice on this stack, at most 2 fetches at a time.
    let paths = ["/x", "/y", "/z"];
    let mut pages = vec![String::new(); paths.len()];
    let res: Result<(), String> = ErrGroup::scope(|g| {
        g.set_limit(2);
        for (path, page) in paths.iter().zip(pages.iter_mut()) {
            let token = g.token().clone();
            g.go(move || {
                *page = fetch(port, path, &token)?;
                Ok(())
            });
        }
    });
    res.expect("all pages");
    println!("pages: {pages:?}");
    assert_eq!(pages, ["page /x", "page /y", "page /z"]);
}
