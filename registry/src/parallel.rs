//! [`parallel_map`] and [`parallel_batches`]: the CPU-heavy, order-preserving maps used
//! where many operations are checked at once (signature verification on import, replay
//! and verify).

/// The most items [`parallel_batches`] hands to one call.
const BATCH: usize = 256;

/// Maps `items` with `f` on all cores, keeping the order of `items`.
pub fn parallel_map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    spread(items, |share| share.iter().map(&f).collect())
}

/// Maps `items` with `f` a batch of at most 256 items at a time, on all cores,
/// keeping the order of `items`; `f` gives one result per item of its batch.
pub fn parallel_batches<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&[T]) -> Vec<U> + Sync,
) -> Vec<U> {
    spread(items, |share| share.chunks(BATCH).flat_map(&f).collect())
}

/// Splits `items` in one share per core (or keeps them together when there are few)
/// and concatenates what `f` gives for each share.
fn spread<T: Sync, U: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<U> + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    if threads < 2 || items.len() < 64 {
        return f(items);
    }
    let size = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(size)
            .map(|share| scope.spawn(|| f(share)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::parallel_map(&items, |i| i * 2),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
        let batches = super::parallel_batches(&items, |batch| {
            assert!(batch.len() <= super::BATCH);
            batch.iter().map(|i| i * 3).collect()
        });
        assert_eq!(batches, items.iter().map(|i| i * 3).collect::<Vec<_>>());
    }
}
