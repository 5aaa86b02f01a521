//! `user_data` tokens: slot index (32 bits), generation (16 bits) and operation (8 bits)
//! packed into the u64 that travels with each SQE and comes back in its CQE.
//!
//! The generation lets a loop drop a late CQE for a slot that has since been reused
//! (closing an fd does not cancel its in-flight operations). The top 8 bits stay zero, so
//! callers may keep `u64::MAX` and similar values for their own markers.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(pub u64);

impl Token {
    pub fn new(slot: u32, generation: u16, op: u8) -> Token {
        Token((slot as u64) | ((generation as u64) << 32) | ((op as u64) << 48))
    }
    pub fn slot(self) -> u32 {
        self.0 as u32
    }
    pub fn generation(self) -> u16 {
        (self.0 >> 32) as u16
    }
    pub fn op(self) -> u8 {
        (self.0 >> 48) as u8
    }
    /// A token for one of the driver's operations.
    pub fn of(slot: u32, generation: u16, op: super::Op) -> Token {
        Token::new(slot, generation, op as u8)
    }
    /// The operation, if the op byte names one.
    pub fn kind(self) -> Option<super::Op> {
        super::Op::from_u8(self.op())
    }
}

#[cfg(test)]
mod tests {
    use super::Token;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let cases = [
            (0u32, 0u16, 0u8, 0u64),
            (1, 0, 0, 1),
            (0, 1, 0, 1 << 32),
            (0, 0, 1, 1 << 48),
            (u32::MAX, u16::MAX, u8::MAX, 0x00ff_ffff_ffff_ffff),
            (0xdead_beef, 0x1234, 0x56, 0x0056_1234_dead_beef),
        ];
        for (slot, generation, op, raw) in cases {
            let t = Token::new(slot, generation, op);
            assert_eq!(t.0, raw, "{slot:#x} {generation:#x} {op:#x}");
            assert_eq!((t.slot(), t.generation(), t.op()), (slot, generation, op));
        }
    }

    #[test]
    fn top_byte_is_never_used() {
        assert_eq!(Token::new(u32::MAX, u16::MAX, u8::MAX).0 >> 56, 0);
    }

    proptest! {
        #[test]
        fn round_trip(slot: u32, generation: u16, op: u8) {
            let t = Token::new(slot, generation, op);
            prop_assert_eq!(t.slot(), slot);
            prop_assert_eq!(t.generation(), generation);
            prop_assert_eq!(t.op(), op);
            prop_assert_eq!(Token(t.0), t);
        }

        #[test]
        fn distinct_fields_give_distinct_tokens(
            a: (u32, u16, u8),
            b: (u32, u16, u8),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(Token::new(a.0, a.1, a.2), Token::new(b.0, b.1, b.2));
        }
    }
}
