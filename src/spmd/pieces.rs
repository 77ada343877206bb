//! One payload as a run of point-to-point messages of bounded size.
//!
//! Every point-to-point path that moves a payload of any length (the `p2p`
//! strategy's results, a [`super::exchange::Team`]'s point-to-point twins,
//! the task farm's payloads and results) sends it with `send` as
//! consecutive pieces of at most `max_bytes` bytes (and at most
//! [`MAX_COUNT`](super::MAX_COUNT) elements, MPI's 32-bit count), and the
//! other side receives it with `receive_into` or `receive` given the same
//! length, bound and tag. The length itself travels first, by the protocol's
//! own means (a length message, a header, or counts both sides know), so a
//! receiver never probes for a size and no message grows with the input.
//! An empty payload is no message at all.

use super::MAX_COUNT;
use mpi::datatype::Equivalence;
use mpi::point_to_point::{Destination, Source};
use mpi::Tag;

/// Largest single message of the strategies' and teams' point-to-point
/// paths; bigger payloads go in pieces.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Elements of `T` per piece of at most `max_bytes` bytes: at least one,
/// at most [`MAX_COUNT`].
pub(crate) fn per_piece<T>(max_bytes: usize) -> usize {
    (max_bytes / std::mem::size_of::<T>().max(1)).clamp(1, MAX_COUNT)
}

/// Sends `data` to `dest` with `tag` as `ceil(len / per_piece)` messages.
pub(crate) fn send<T: Equivalence>(dest: &impl Destination, data: &[T], max_bytes: usize, tag: Tag) {
    for piece in data.chunks(per_piece::<T>(max_bytes)) {
        dest.send_with_tag(piece, tag);
    }
}

/// Receives into all of `buf` what [`send`] sent from `src` with the same
/// `max_bytes` and `tag`.
pub(crate) fn receive_into<T: Equivalence>(src: &impl Source, buf: &mut [T], max_bytes: usize, tag: Tag) {
    for piece in buf.chunks_mut(per_piece::<T>(max_bytes)) {
        src.receive_into_with_tag(piece, tag);
    }
}

/// [`receive_into`] a new vector of `len` elements.
pub(crate) fn receive<T: Equivalence + Default + Clone>(
    src: &impl Source,
    len: usize,
    max_bytes: usize,
    tag: Tag,
) -> Vec<T> {
    let mut data = vec![T::default(); len];
    receive_into(src, &mut data, max_bytes, tag);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_hold_at_least_one_element_and_fit_one_call() {
        assert_eq!(per_piece::<u8>(MAX_MESSAGE_BYTES), 64 << 20);
        assert_eq!(per_piece::<f64>(MAX_MESSAGE_BYTES), 8 << 20);
        assert_eq!(per_piece::<u64>(12), 1, "a bound below one element still moves one");
        assert_eq!(per_piece::<u8>(0), 1);
        assert_eq!(per_piece::<u8>(usize::MAX), MAX_COUNT);
    }
}
