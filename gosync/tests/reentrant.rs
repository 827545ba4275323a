//! ReentrantMutex (owner = thread) and TokenMutex (owner = token): re-entry, exclusion between
//! owners, release after the last guard, and their Send/Sync bounds.
#![cfg(not(loom))]

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use gosync::{ReentrantMutex, TokenMutex};

#[test]
fn reentrant_same_thread_reenters_other_thread_waits() {
    let m = Arc::new(ReentrantMutex::new(RefCell::new(Vec::new())));
    let g1 = m.lock();
    let g2 = m.lock();
    let g3 = m.try_lock().expect("owner's try_lock must re-enter");
    g3.borrow_mut().push(1);
    assert!(m.is_owned_by_current_thread());
    assert!(m.is_locked());

    let other_got_it = Arc::new(AtomicBool::new(false));
    let (m2, flag) = (Arc::clone(&m), Arc::clone(&other_got_it));
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        assert!(!m2.is_owned_by_current_thread());
        tx.send(m2.try_lock().is_some()).unwrap();
        let g = m2.lock();
        flag.store(true, Ordering::SeqCst);
        g.borrow_mut().push(2);
    });
    assert!(
        !rx.recv().unwrap(),
        "another thread's try_lock succeeded while held"
    );
    // Dropping all but one guard keeps it locked.
    drop(g3);
    drop(g2);
    thread::sleep(Duration::from_millis(20));
    assert!(
        !other_got_it.load(Ordering::SeqCst),
        "released before the last guard"
    );
    drop(g1);
    t.join().unwrap();
    assert!(other_got_it.load(Ordering::SeqCst));
    assert!(!m.is_owned_by_current_thread());
    assert!(!m.is_locked());
    assert_eq!(*m.lock().borrow(), [1, 2]);
}

#[test]
fn reentrant_recursion_like_the_go_notes() {
    // A recursive function that locks on every level, as in the notes' motivating example.
    fn visit(m: &ReentrantMutex<RefCell<u32>>, depth: u32) {
        let g = m.lock();
        *g.borrow_mut() += 1;
        if depth > 0 {
            visit(m, depth - 1);
        }
    }
    let m = ReentrantMutex::new(RefCell::new(0));
    visit(&m, 99);
    assert_eq!(*m.lock().borrow(), 100);
    assert!(!m.is_locked());
    assert_eq!(m.into_inner().into_inner(), 100);
}

#[test]
fn reentrant_hammer() {
    let m = Arc::new(ReentrantMutex::new(RefCell::new(0u64)));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for _ in 0..500 {
                    let a = m.lock();
                    let b = m.lock();
                    *b.borrow_mut() += 1;
                    drop(a);
                    *b.borrow_mut() += 1;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(*m.lock().borrow(), 4000);
}

#[test]
fn token_same_token_reenters_other_token_waits() {
    let m = Arc::new(TokenMutex::new(7));
    let a = m.lock(1);
    let a2 = m.lock(1);
    assert_eq!(m.owner(), Some(1));
    assert!(m.try_lock(2).is_none());

    let (m2, waited) = (Arc::clone(&m), Arc::new(AtomicBool::new(false)));
    let w2 = Arc::clone(&waited);
    let t = thread::spawn(move || {
        let g = m2.lock(2);
        w2.store(true, Ordering::SeqCst);
        *g
    });
    drop(a);
    thread::sleep(Duration::from_millis(20));
    assert!(
        !waited.load(Ordering::SeqCst),
        "token 2 got in while token 1 still held a guard"
    );
    drop(a2);
    assert_eq!(t.join().unwrap(), 7);
    assert_eq!(m.owner(), None);
    assert!(!m.is_locked());
}

#[test]
fn token_owner_moves_between_threads() {
    // The logical owner (token 9) takes the lock on one thread and releases it on another.
    let m = Arc::new(TokenMutex::new(String::from("x")));
    let m2 = Arc::clone(&m);
    let guard_holder = thread::spawn(move || {
        let g = m2.lock(9);
        // Re-enter from yet another thread with the same token while the first guard lives.
        thread::scope(|s| {
            s.spawn(|| assert_eq!(&*m2.lock(9), "x"));
        });
        drop(g);
    });
    guard_holder.join().unwrap();
    assert_eq!(m.owner(), None);

    let g = m.lock(9);
    thread::scope(|s| {
        // A guard is Send when T: Sync: drop it on another thread.
        s.spawn(move || drop(g));
    });
    assert!(m.try_lock(3).is_some());
}

#[test]
fn token_hammer_same_and_different_tokens() {
    let m = Arc::new(TokenMutex::new(std::sync::atomic::AtomicU64::new(0)));
    let inside = Arc::new(std::sync::Mutex::new(None::<u64>));
    let handles: Vec<_> = (0..6u64)
        .map(|i| {
            let (m, inside) = (Arc::clone(&m), Arc::clone(&inside));
            // Threads 0/1 share token 100, 2/3 share 200, 4/5 share 300.
            let token = 100 * (i / 2 + 1);
            thread::spawn(move || {
                for _ in 0..300 {
                    let g = m.lock(token);
                    {
                        let mut who = inside.lock().unwrap();
                        assert!(
                            who.is_none() || *who == Some(token),
                            "two tokens inside at once"
                        );
                        *who = Some(token);
                    }
                    g.fetch_add(1, Ordering::Relaxed);
                    // The last guard of the token clears the marker before unlocking.
                    let mut who = inside.lock().unwrap();
                    drop(g);
                    if m.owner() != Some(token) {
                        *who = None;
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(m.lock(1).load(Ordering::Relaxed), 1800);
}

#[test]
fn send_sync_bounds() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<ReentrantMutex<RefCell<u32>>>();
    sync::<ReentrantMutex<RefCell<u32>>>(); // T: Send is enough: only the owner sees &T
    send::<TokenMutex<u32>>();
    sync::<TokenMutex<u32>>();
    send::<gosync::TokenMutexGuard<'static, u32>>();
}
