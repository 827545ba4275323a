//! Free loopback ports for the servers the tests start (etcd, PostgreSQL, Redis, memcached).
//! One file, included by path from each crate's test support.
//!
//! A port found by binding port 0 comes from the kernel's ephemeral range, which is also where
//! the kernel takes the local port of every outgoing connection. Between the moment such a port
//! is released and the moment the server binds it, any connection made on the machine (an etcd
//! member dialing its peers, `etcdctl`, another test's client) can take it, and the server dies
//! with "address already in use". The ports handed out here come from outside the ephemeral
//! range, which outgoing connections never use. Only another process picking ports this way can
//! still collide; each process starts at its own random point of the range, which makes that
//! rare, and the etcd cluster retries on new ports when it happens.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Ports below this are left alone (well-known and registered services).
const LOWEST: u16 = 10_000;

/// A gap smaller than this is not used; ports then come from the ephemeral range as before.
const MIN_GAP: u32 = 1_000;

/// The kernel's ephemeral port range (Linux's default when it cannot be read).
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|v| v.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// The larger of the gaps below and above the ephemeral range `(lo, hi)`, from [`LOWEST`] up,
/// as an inclusive range; `None` when both are smaller than [`MIN_GAP`].
pub fn outside(lo: u16, hi: u16) -> Option<(u16, u16)> {
    let size = |(a, b): (u16, u16)| if b >= a { u32::from(b - a) + 1 } else { 0 };
    let below = (LOWEST, lo.saturating_sub(1));
    let above = (hi.saturating_add(1).max(LOWEST), u16::MAX);
    let best = if size(below) >= size(above) {
        below
    } else {
        above
    };
    (size(best) >= MIN_GAP).then_some(best)
}

/// `n` distinct free loopback ports, outside the ephemeral range when the machine leaves room
/// for that. All `n` stay bound until the last is found, so none is handed out twice.
pub fn free_ports(n: usize) -> Vec<u16> {
    let (lo, hi) = ephemeral_range();
    let mut held: Vec<TcpListener> = Vec::with_capacity(n);
    match outside(lo, hi) {
        Some((a, b)) => {
            // This process's starting point, and a cursor so that tests running in parallel
            // in one process do not try the same ports.
            static START: OnceLock<u32> = OnceLock::new();
            static CURSOR: AtomicU32 = AtomicU32::new(0);
            let size = u32::from(b - a) + 1;
            let start = *START.get_or_init(|| {
                let mut h = RandomState::new().build_hasher();
                h.write_u32(std::process::id());
                h.finish() as u32
            });
            let mut tried = 0;
            while held.len() < n {
                assert!(
                    tried < size,
                    "no free loopback port in {a}..={b} (outside the ephemeral range {lo}..={hi})"
                );
                tried += 1;
                let i = start.wrapping_add(CURSOR.fetch_add(1, Ordering::Relaxed)) % size;
                // `i < size <= 65536 - a`, so the sum fits in a u16.
                if let Ok(l) = TcpListener::bind(("127.0.0.1", a + i as u16)) {
                    held.push(l);
                }
            }
        }
        None => {
            while held.len() < n {
                held.push(TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"));
            }
        }
    }
    held.iter()
        .map(|l| {
            l.local_addr()
                .expect("local address of a bound listener")
                .port()
        })
        .collect()
}

/// A free loopback port (see [`free_ports`]).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}
