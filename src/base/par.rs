//! Parallel iteration over items of uneven or large cost (blocks, streams, files).
use rayon::prelude::*;

/// `items` on all cores, one item per rayon job. Left to itself, rayon hands each thread long
/// runs of items to do in turn, and the last run leaves one core working alone at the end (15 ms
/// of a 1 GiB encrypted stream's 0.27 s verify on 2 cores, its blocks being 2 MiB each).
pub fn one_per_job<T: Sync>(items: &[T]) -> rayon::iter::MaxLen<rayon::slice::Iter<'_, T>> {
    items.par_iter().with_max_len(1)
}
