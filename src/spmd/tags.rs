//! Every MPI message tag of the crate, in one table.
//!
//! A receive matches a send by communicator, source and tag, so two protocols
//! that shared a tag on one communicator could take each other's messages.
//! Some protocols also run on a communicator of their own (a
//! [`super::exchange::Team`] or a [`super::halo::Halo`] on a duplicate of
//! the world, the runtime's checkpoints on `Spmd`'s `watch`), but the tags are kept distinct across the
//! whole crate anyway, so that no protocol's safety rests on which
//! communicator it happens to use. The test
//! below holds them to it; a new tag is one more line of the table.

use mpi::Tag;

/// Declares each tag and the list of all of them (for the test), from one
/// table, so that a tag cannot be declared without being checked.
macro_rules! tags {
    ($($(#[$doc:meta])* $name:ident = $value:expr;)*) => {
        $($(#[$doc])* pub const $name: Tag = $value;)*

        /// Every tag of the table, with its name.
        #[cfg(test)]
        const ALL: &[(&str, Tag)] = &[$((stringify!($name), $name)),*];
    };
}

tags! {
    /// `p2p` strategy, rank 0 → worker: the worker's range of units, `[start, end]`.
    RANGE = 101;
    /// `p2p` strategy, worker → rank 0: the worker's tally, as limbs.
    TALLY = 102;
    /// `p2p` strategy, worker → rank 0: the length of its bytes, then the
    /// bytes in pieces of at most `pieces::MAX_MESSAGE_BYTES`.
    DATA = 103;
    /// `dynamic` strategy, rank 0 → worker: the next chunk, `[start, end]`
    /// (empty: no more work).
    WORK = 104;
    /// `dynamic` strategy, worker → rank 0: a request, carrying the result of
    /// the worker's last chunk (a header, then its bytes).
    RESULT = 105;
    /// Task farm, worker → rank 0: an ask, `[kind, item, len]`.
    ASK = 201;
    /// Task farm, worker → rank 0: the ask's result or error text, in pieces.
    ASK_DATA = 202;
    /// Task farm, rank 0 → worker: a give, `[kind, item, len, limit_ms]`.
    GIVE = 203;
    /// Task farm, rank 0 → worker: the given item's payload, in pieces.
    GIVE_DATA = 204;
    /// A [`super::exchange::Team`]'s point-to-point twins of the collectives
    /// (`broadcast_p2p`, `scatter_p2p`, `gather_p2p`): the pieces of a part.
    PIECE = 301;
    /// A [`super::halo::Halo`]'s `p2p` exchange: an edge travelling north, to
    /// the neighbour one grid row up (its ghost row below its block).
    HALO_NORTH = 401;
    /// A halo's edge travelling south, to the neighbour one grid row down.
    HALO_SOUTH = 402;
    /// A halo's edge travelling west, to the neighbour one grid column left.
    HALO_WEST = 403;
    /// A halo's edge travelling east, to the neighbour one grid column right.
    HALO_EAST = 404;
    /// A checkpoint's note to rank 0 ([`super::checkpoint_on`]).
    CHECKPOINT = 901;
    /// The farewell before `MPI_Finalize`: one byte to every other rank
    /// (`Spmd`'s `Drop`).
    FAREWELL = 902;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tag_is_distinct_and_valid() {
        for (i, (name, tag)) in ALL.iter().enumerate() {
            // MPI guarantees tags up to 32767 (MPI_TAG_UB is at least that).
            assert!((0..=32767).contains(tag), "{name} = {tag} is not a portable MPI tag");
            for (other, same) in &ALL[..i] {
                assert_ne!(tag, same, "{name} and {other} share tag {tag}");
            }
        }
    }
}
