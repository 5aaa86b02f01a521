//! Field block decoding (RFC 7541 sections 3, 6): representations in, fields out, into a
//! caller-owned arena.

use super::error::DecodeError;
use super::huffman;
use super::integer;
use super::table::{DynamicTable, DEFAULT_TABLE_SIZE, ENTRY_OVERHEAD, STATIC};

/// One decoded field: its name then its value, contiguous in the arena at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpan {
    pub start: u32,
    pub name_len: u32,
    pub value_len: u32,
    /// Sent as "never indexed" (6.2.3): an intermediary must keep it that way.
    pub never_indexed: bool,
    /// Name and value came whole from a table entry whose syntax is valid for HTTP/2
    /// (RFC 9113 8.2.1): the message rules skip re-checking it. False only means "not
    /// known", never "invalid".
    pub checked: bool,
}

impl FieldSpan {
    pub fn name<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        let s = self.start as usize;
        &arena[s..s + self.name_len as usize]
    }

    pub fn value<'a>(&self, arena: &'a [u8]) -> &'a [u8] {
        let s = self.start as usize + self.name_len as usize;
        &arena[s..s + self.value_len as usize]
    }

    /// The size the header list limit counts (RFC 9113 6.5.2: name + value + 32).
    pub fn list_size(&self) -> usize {
        self.name_len as usize + self.value_len as usize + ENTRY_OVERHEAD
    }
}

#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE: no size update may exceed it.
    max_allowed: usize,
    /// We lowered our setting below the table's size: the next block must start with an
    /// update that honours it (RFC 7541 4.2).
    update_required: bool,
    max_list_size: usize,
}

impl Decoder {
    /// A decoder for our SETTINGS_HEADER_TABLE_SIZE `max_table_size` and
    /// SETTINGS_MAX_HEADER_LIST_SIZE `max_list_size`. Until the peer acknowledges our
    /// SETTINGS it may use the protocol default, so the table starts at 4096 and
    /// [`Decoder::set_max_allowed`] applies our value once acknowledged.
    pub fn new(max_table_size: usize, max_list_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            max_allowed: DEFAULT_TABLE_SIZE.max(max_table_size),
            update_required: false,
            max_list_size,
        }
    }

    /// Our table size setting took effect (the peer acknowledged it).
    pub fn set_max_allowed(&mut self, n: usize) {
        self.max_allowed = n;
        if self.table.max_size() > n {
            self.update_required = true;
        }
    }

    pub fn set_max_list_size(&mut self, n: usize) {
        self.max_list_size = n;
    }

    pub fn table(&self) -> &DynamicTable {
        &self.table
    }

    /// Decode a whole field block, appending name and value bytes to `arena` and one
    /// [`FieldSpan`] per field to `fields`. On [`DecodeError::HeaderListTooLarge`] the
    /// block was decoded to the end (table in step) but fields past the limit were
    /// dropped; any other error leaves the decoder unusable (connection error).
    pub fn decode(
        &mut self,
        block: &[u8],
        arena: &mut Vec<u8>,
        fields: &mut Vec<FieldSpan>,
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        let mut list_size = 0usize;
        let mut too_large = false;
        let mut seen_field = false;
        while pos < block.len() {
            let b = block[pos];
            if b & 0xe0 == 0x20 {
                // 6.3: "This dynamic table size update MUST occur at the beginning of
                // the first header block following the change"; "MUST NOT exceed" ours.
                if seen_field {
                    return Err(DecodeError::SizeUpdateNotFirst);
                }
                let (size, n) = integer::decode(&block[pos..], 5)?;
                pos += n;
                if size > self.max_allowed {
                    return Err(DecodeError::SizeUpdateTooLarge(size));
                }
                self.table.set_max_size(size);
                self.update_required = false;
                continue;
            }
            if self.update_required {
                return Err(DecodeError::MissingSizeUpdate);
            }
            seen_field = true;
            let start = arena.len();
            let mut never_indexed = false;
            let mut checked = false;
            let (name_len, value_len) = if b & 0x80 != 0 {
                // 6.1 indexed field.
                let (index, n) = integer::decode(&block[pos..], 7)?;
                pos += n;
                let (name, value, valid) = self.lookup(index)?;
                arena.extend_from_slice(name);
                arena.extend_from_slice(value);
                checked = valid;
                (name.len(), value.len())
            } else {
                // 6.2.1 with incremental indexing (01, 6-bit index), 6.2.2 without (0000)
                // and 6.2.3 never indexed (0001, 4-bit index).
                let indexing = b & 0x40 != 0;
                never_indexed = !indexing && b & 0x10 != 0;
                let prefix = if indexing { 6 } else { 4 };
                let (index, n) = integer::decode(&block[pos..], prefix)?;
                pos += n;
                let name_len = if index == 0 {
                    pos += read_string(&block[pos..], arena)?;
                    arena.len() - start
                } else {
                    let name = self.lookup(index)?.0;
                    arena.extend_from_slice(name);
                    name.len()
                };
                pos += read_string(&block[pos..], arena)?;
                let value_len = arena.len() - start - name_len;
                if indexing {
                    let (name, value) = arena[start..].split_at(name_len);
                    self.table.insert(name, value);
                    // Not inserted (larger than the table) leaves the table empty.
                    checked = self.table.entry(0).is_some_and(|e| e.2);
                }
                (name_len, value_len)
            };
            list_size += name_len + value_len + ENTRY_OVERHEAD;
            if too_large || list_size > self.max_list_size {
                // Keep decoding for the table's sake, but hold no more than one field.
                too_large = true;
                arena.truncate(start);
                continue;
            }
            fields.push(FieldSpan {
                start: start as u32,
                name_len: name_len as u32,
                value_len: value_len as u32,
                never_indexed,
                checked,
            });
        }
        if too_large {
            return Err(DecodeError::HeaderListTooLarge);
        }
        Ok(())
    }

    /// A table entry with whether its syntax is known valid (the static table's is).
    fn lookup(&self, index: usize) -> Result<(&[u8], &[u8], bool), DecodeError> {
        match index {
            0 => Err(DecodeError::InvalidIndex(0)),
            1..=61 => {
                let (name, value) = STATIC[index - 1];
                Ok((name, value, true))
            }
            _ => self
                .table
                .entry(index - 62)
                .ok_or(DecodeError::InvalidIndex(index)),
        }
    }
}

/// Read a string literal (5.2) at the start of `buf` into `arena`; returns bytes used.
fn read_string(buf: &[u8], arena: &mut Vec<u8>) -> Result<usize, DecodeError> {
    let huff = buf.first().ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let (len, n) = integer::decode(buf, 7)?;
    let body = buf.get(n..n + len).ok_or(DecodeError::Truncated)?;
    if huff {
        huffman::decode(body, arena).map_err(|_| DecodeError::Huffman)?;
    } else {
        arena.extend_from_slice(body);
    }
    Ok(n + len)
}
