//! The load tool's one pseudo-random step (splitmix64): fast, seedable and good enough to
//! pick weighted targets and fill `{RAND}`/`{UUID}` placeholders. Its own module so that
//! the target selection and the templates share it without importing each other.

/// Advance `state` and return the next 64 random bits.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
