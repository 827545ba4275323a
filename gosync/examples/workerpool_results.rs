//! Results and errors gathered from a worker pool, goworkers style
//! (`SubmitCheckResult` with a result channel and an error channel), then the same with
//! `spawn` handles, which also catch panics.
//!
//! Run: `cargo run --example workerpool_results`

use std::sync::mpsc;
use std::time::Duration;

use gosync::workerpool::{Options, TaskError, WorkerPool};

/// A job that sometimes fails: "fetch" the size of item `i`.
fn fetch(i: u32) -> Result<u64, String> {
    std::thread::sleep(Duration::from_millis(2));
    if i % 7 == 3 {
        Err(format!("item {i}: not found"))
    } else {
        Ok(u64::from(i) * 100)
    }
}

fn main() {
    // goworkers' Workers: 0 means "spawn on demand"; here 4 workers and a queue of 128 (its
    // minimum QSize) so submit never blocks for this batch.
    let pool = WorkerPool::with_options(4, Options::new().queue_capacity(128));

    // 1. goworkers style: results and errors on two channels. Unlike goworkers' buffered
    //    ResultChan/ErrChan (100 slots, "start listening before submitting"), std channels are
    //    unbounded, so nothing blocks if nobody listens yet.
    let (res_tx, res_rx) = mpsc::channel::<(u32, u64)>();
    let (err_tx, err_rx) = mpsc::channel::<String>();
    for i in 0..20 {
        let (res_tx, err_tx) = (res_tx.clone(), err_tx.clone());
        pool.submit(move || match fetch(i) {
            Ok(v) => res_tx.send((i, v)).unwrap(),
            Err(e) => err_tx.send(e).unwrap(),
        })
        .unwrap();
    }
    drop((res_tx, err_tx));
    pool.wait(); // goworkers' Wait(): every submitted job has finished
    let mut results: Vec<_> = res_rx.iter().collect();
    results.sort();
    let errors: Vec<_> = err_rx.iter().collect();
    println!(
        "channels: {} results, {} errors",
        results.len(),
        errors.len()
    );
    for e in &errors {
        println!("  error: {e}");
    }
    assert_eq!(results.len() + errors.len(), 20);

    // 2. Handles: each task's value, error, or panic, in submission order.
    let handles: Vec<_> = (0..10u32)
        .map(|i| {
            pool.spawn(move || {
                if i == 5 {
                    panic!("item {i}: parser bug");
                }
                fetch(i)
            })
            .unwrap()
        })
        .collect();
    let (mut ok, mut failed, mut panicked) = (0, 0, 0);
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Ok(v)) => {
                ok += 1;
                println!("  #{i}: {v}");
            }
            Ok(Err(e)) => {
                failed += 1;
                println!("  #{i}: failed: {e}");
            }
            Err(TaskError::Panicked(p)) => {
                panicked += 1;
                println!(
                    "  #{i}: panicked: {}",
                    p.downcast_ref::<String>().map_or("?", |s| s.as_str())
                );
            }
            Err(e) => println!("  #{i}: {e}"),
        }
    }
    println!("handles: {ok} ok, {failed} failed, {panicked} panicked; the pool is still healthy");
    assert_eq!((ok, failed, panicked), (8, 1, 1));
    assert_eq!(pool.spawn(|| 1 + 1).unwrap().join().unwrap(), 2);
    pool.stop_wait();
}
