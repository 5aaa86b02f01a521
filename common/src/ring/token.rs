//! `user_data` tokens: slot index (32 bits), generation (16 bits) and operation (8 bits)
//! packed into the u64 that travels with each SQE and comes back in its CQE.
//!
//! CONTRACT (stub written by the lead; the implementer keeps these names and signatures).

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
}
