//! Running one operation on many cells at once, up to a bound (`[ssh]
//! parallel`), with the results in the cells' order: what is shown and
//! decided afterwards does not depend on which target answered first.
//!
//! Only for the steps that are safe to overlap (observing a deploy dir,
//! writing a generation dir). Flips, `activate` and health checks never go
//! through here: they stay one cell at a time.
//!
//! Scoped threads from std, not a pool crate: the work is blocking IO on a
//! few (at most 256) targets, a pool sized for CPUs would be the wrong
//! bound, and a scope lets the work borrow the caller's data.

use std::sync::atomic::{AtomicUsize, Ordering};

/// `work` applied to every item, on up to `limit` threads at once; the
/// results in the order of `items`. With a `limit` of 1 (or one item) it
/// runs on the calling thread. A panic in `work` is a bug and propagates.
pub fn each<T, R, F>(items: &[T], limit: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = limit.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn results_keep_the_order_of_the_items() {
        let items: Vec<u64> = (0..40).collect();
        // Later items finish first: the order must not follow completion.
        let out = each(&items, 8, |n| {
            std::thread::sleep(Duration::from_micros(40 - n));
            n * 2
        });
        assert_eq!(out, items.iter().map(|n| n * 2).collect::<Vec<_>>());
    }

    #[test]
    fn never_more_than_limit_at_once() {
        let running = Mutex::new((0usize, 0usize)); // (now, most)
        let items = vec![(); 30];
        each(&items, 4, |()| {
            {
                let mut r = running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            std::thread::sleep(Duration::from_millis(2));
            running.lock().unwrap().0 -= 1;
        });
        let most = running.lock().unwrap().1;
        assert!((2..=4).contains(&most), "{most} at once");
    }

    #[test]
    fn a_limit_of_one_stays_on_the_calling_thread() {
        let me = std::thread::current().id();
        let out = each(&[1, 2, 3], 1, |_| std::thread::current().id() == me);
        assert_eq!(out, [true, true, true]);
        assert!(each(&[] as &[u8], 10, |_| ()).is_empty());
    }
}
