//! Generations: the tokens tags and the namespace epoch hold, and the snapshot of them an
//! entry is built under.

use smallvec::SmallVec;

/// A tag's generation: a random token that changes on every invalidation of the tag.
///
/// Its bits are not part of the API: a store makes new generations with [`Generation::random`]
/// only, and keeps the bits [`Generation::to_bits`] gives, to read them back with
/// [`Generation::from_bits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Generation(pub(crate) u64);

impl Generation {
    /// A fresh random generation. Random rather than counted, so that a generation lost by the
    /// store is never reissued (invariant 4).
    pub fn random() -> Self {
        Generation(rand::random())
    }

    /// The generation a store kept as `bits` (what [`Generation::to_bits`] gave).
    pub const fn from_bits(bits: u64) -> Self {
        Generation(bits)
    }

    /// The bits a store keeps for this generation.
    pub const fn to_bits(self) -> u64 {
        self.0
    }
}

/// The generations one value was built under: the namespace epoch first, then its tags in order.
pub type Snapshot = SmallVec<[Generation; 8]>;
