//! Field block encoding (RFC 7541 section 6) with a dynamic table bounded by our own cap
//! and the peer's SETTINGS_HEADER_TABLE_SIZE. Fields that repeat (a response's `server`,
//! `content-type`, a client's `:authority`, `:path`, `user-agent`) are indexed the first
//! time and cost one or two bytes afterwards; fields marked sensitive are sent "never
//! indexed".

use super::huffman;
use super::integer;
use super::table::{static_lookup, DynamicTable, StaticMatch, DEFAULT_TABLE_SIZE, ENTRY_OVERHEAD};

#[derive(Debug)]
pub struct Encoder {
    table: DynamicTable,
    /// Our bound on the table (memory per connection); the peer's setting may lower it.
    cap: usize,
    /// A size update owed at the start of the next block: the smallest size set since the
    /// last block (4.2: the decoder must see every reduction), then the current one.
    pending_min: Option<usize>,
    /// Huffman-code literals when shorter (on by default; off reproduces RFC 7541 C.3/C.5).
    huffman: bool,
}

impl Encoder {
    /// An encoder whose table never exceeds `cap` bytes (the peer's default is 4096).
    pub fn new(cap: usize) -> Encoder {
        let size = cap.min(DEFAULT_TABLE_SIZE);
        Encoder {
            table: DynamicTable::new(size),
            cap,
            pending_min: (size != DEFAULT_TABLE_SIZE).then_some(size),
            huffman: true,
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE changed.
    pub fn set_peer_max(&mut self, peer: usize) {
        let size = peer.min(self.cap);
        if size != self.table.max_size() {
            self.pending_min = Some(self.pending_min.map_or(size, |m| m.min(size)));
            self.table.set_max_size(size);
        }
    }

    pub fn set_huffman(&mut self, on: bool) {
        self.huffman = on;
    }

    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Begin a field block: emits any size update owed.
    pub fn start_block(&mut self, out: &mut Vec<u8>) {
        if let Some(min) = self.pending_min.take() {
            let now = self.table.max_size();
            if min < now {
                integer::encode(min, 5, 0x20, out);
            }
            integer::encode(now, 5, 0x20, out);
        }
    }

    /// Append one field of the current block. HTTP/2 wants `name` lowercase (RFC 9113
    /// 8.2.1); that is the caller's promise, not checked here.
    pub fn field(&mut self, name: &[u8], value: &[u8], sensitive: bool, out: &mut Vec<u8>) {
        let mut name_index = 0;
        match static_lookup(name, value) {
            StaticMatch::Full(i) if !sensitive => {
                integer::encode(i, 7, 0x80, out);
                return;
            }
            StaticMatch::Full(i) | StaticMatch::Name(i) => name_index = i,
            StaticMatch::None => {}
        }
        if !sensitive {
            if let Some((i, full)) = self.table.find(name, value) {
                if full {
                    integer::encode(62 + i, 7, 0x80, out);
                    return;
                }
                if name_index == 0 {
                    name_index = 62 + i;
                }
            }
        }
        let entry = name.len() + value.len() + ENTRY_OVERHEAD;
        let (first, prefix) = if sensitive {
            (0x10, 4)
        } else if worth_indexing(name) && entry <= self.table.max_size() * 3 / 4 {
            (0x40, 6)
        } else {
            (0x00, 4)
        };
        integer::encode(name_index, prefix, first, out);
        if name_index == 0 {
            write_string(name, self.huffman, out);
        }
        write_string(value, self.huffman, out);
        if first == 0x40 {
            self.table.insert(name, value);
        }
    }

    /// Encode a whole block.
    pub fn encode<'f>(
        &mut self,
        fields: impl IntoIterator<Item = (&'f [u8], &'f [u8])>,
        out: &mut Vec<u8>,
    ) {
        self.start_block(out);
        for (name, value) in fields {
            self.field(name, value, false, out);
        }
    }
}

/// Credentials stay out of the table (a compression oracle could probe them, RFC 7541
/// 7.1); everything else may repeat and is worth a table entry.
fn worth_indexing(name: &[u8]) -> bool {
    !matches!(
        name,
        b"authorization" | b"proxy-authorization" | b"cookie" | b"set-cookie"
    )
}

/// A string literal (5.2), Huffman-coded when that is shorter.
fn write_string(s: &[u8], use_huffman: bool, out: &mut Vec<u8>) {
    let huff = if use_huffman {
        huffman::encoded_len(s)
    } else {
        usize::MAX
    };
    if huff < s.len() {
        integer::encode(huff, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        integer::encode(s.len(), 7, 0, out);
        out.extend_from_slice(s);
    }
}
