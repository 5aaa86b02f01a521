//! ASYNC_CANCEL of another operation, named by its token. Its own completion carries
//! nothing: the cancelled operation reports for itself.

use io_uring::{opcode, squeue};

use crate::ring::slab::UringCore;
use crate::ring::{Op, Token};

impl UringCore {
    pub(in crate::ring) fn cancel_entry(&self, target: Token) -> squeue::Entry {
        opcode::AsyncCancel::new(target.0)
            .build()
            .user_data(Token::of(target.slot(), 0, Op::Cancel).0)
    }
}
