//! HPACK's static table (RFC 7541 Appendix A) and dynamic table (section 4).
//!
//! The dynamic table keeps its strings in one byte arena appended at the end and
//! compacted when it reaches twice the table's byte limit, and its entries in a ring of
//! offsets: once warm, inserting and evicting allocate nothing.

use std::collections::VecDeque;

use crate::h2::field::valid_field;

/// The decoder's default (and the protocol's initial) dynamic table size: 4096 bytes.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Per-entry overhead counted by the table size (4.1).
pub const ENTRY_OVERHEAD: usize = 32;

pub const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The first 1-based static index whose name is `name`; a `match` compiles to a length
/// switch and a few compares, no hashing.
fn static_name(name: &[u8]) -> Option<usize> {
    Some(match name {
        b":authority" => 1,
        b":method" => 2,
        b":path" => 4,
        b":scheme" => 6,
        b":status" => 8,
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// What the static table holds for a field: the index of the exact (name, value) pair if
/// any, else of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticMatch {
    None,
    Name(usize),
    Full(usize),
}

pub fn static_lookup(name: &[u8], value: &[u8]) -> StaticMatch {
    let Some(first) = static_name(name) else {
        return StaticMatch::None;
    };
    let mut i = first;
    while i <= STATIC.len() && STATIC[i - 1].0 == name {
        if STATIC[i - 1].1 == value {
            return StaticMatch::Full(i);
        }
        i += 1;
    }
    StaticMatch::Name(first)
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    name_len: usize,
    value_len: usize,
    /// The field passed `field::valid_field` when inserted.
    valid: bool,
}

/// The dynamic table: index 0 here is HPACK index 62 (the newest entry).
#[derive(Debug)]
pub struct DynamicTable {
    slots: VecDeque<Slot>,
    arena: Vec<u8>,
    /// Sum of entry sizes (name + value + 32), as 4.1 counts them.
    size: usize,
    /// The current maximum (the last size update).
    max_size: usize,
}

impl DynamicTable {
    pub fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            slots: VecDeque::new(),
            arena: Vec::new(),
            size: 0,
            max_size,
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Entry `i` (0 = newest) as (name, value).
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entry(i).map(|(n, v, _)| (n, v))
    }

    /// Entry `i` with whether its syntax is valid for HTTP/2 (RFC 9113 8.2.1).
    pub fn entry(&self, i: usize) -> Option<(&[u8], &[u8], bool)> {
        let s = self.slots.get(i)?;
        let name = &self.arena[s.start..s.start + s.name_len];
        let value = &self.arena[s.start + s.name_len..s.start + s.name_len + s.value_len];
        Some((name, value, s.valid))
    }

    /// Change the maximum size, evicting as needed (4.3).
    pub fn set_max_size(&mut self, max: usize) {
        self.max_size = max;
        self.evict_to(max);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let s = self.slots.pop_back().expect("size > 0 means entries");
            self.size -= s.name_len + s.value_len + ENTRY_OVERHEAD;
        }
        if self.slots.is_empty() {
            self.arena.clear();
        }
    }

    /// Add an entry (4.4): evict until it fits; one larger than the whole table empties
    /// the table and is not added. `name` and `value` must not borrow this table.
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let entry = name.len() + value.len() + ENTRY_OVERHEAD;
        if entry > self.max_size {
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max_size - entry);
        let bytes = name.len() + value.len();
        // Live bytes never exceed max_size; compact when the arena would pass twice that,
        // so the copy is paid for by at least max_size bytes of inserts.
        let limit = 2 * self.max_size.max(256);
        if self.arena.len() + bytes > limit {
            self.compact();
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(name);
        self.arena.extend_from_slice(value);
        self.slots.push_front(Slot {
            start,
            name_len: name.len(),
            value_len: value.len(),
            // Checked once here, so a field indexed from the table needs no second look.
            valid: valid_field(name, value),
        });
        self.size += entry;
    }

    fn compact(&mut self) {
        let Some(oldest) = self.slots.back() else {
            self.arena.clear();
            return;
        };
        let from = oldest.start;
        self.arena.copy_within(from.., 0);
        self.arena.truncate(self.arena.len() - from);
        for s in self.slots.iter_mut() {
            s.start -= from;
        }
    }

    /// Find a field among the entries: `(index, true)` for name and value, `(index,
    /// false)` for the name only (the newest such entry), 0-based.
    pub fn find(&self, name: &[u8], value: &[u8]) -> Option<(usize, bool)> {
        let mut name_match = None;
        for (i, s) in self.slots.iter().enumerate() {
            if s.name_len != name.len() {
                continue;
            }
            let n = &self.arena[s.start..s.start + s.name_len];
            if n != name {
                continue;
            }
            let v = &self.arena[s.start + s.name_len..s.start + s.name_len + s.value_len];
            if v == value {
                return Some((i, true));
            }
            name_match.get_or_insert((i, false));
        }
        name_match
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_lookup_finds_runs() {
        assert_eq!(static_lookup(b":method", b"POST"), StaticMatch::Full(3));
        assert_eq!(static_lookup(b":method", b"PUT"), StaticMatch::Name(2));
        assert_eq!(static_lookup(b":status", b"500"), StaticMatch::Full(14));
        assert_eq!(static_lookup(b":status", b"201"), StaticMatch::Name(8));
        assert_eq!(
            static_lookup(b"www-authenticate", b""),
            StaticMatch::Full(61)
        );
        assert_eq!(static_lookup(b"x-foo", b""), StaticMatch::None);
        for (i, (name, value)) in STATIC.iter().enumerate() {
            let m = static_lookup(name, value);
            assert_eq!(
                m,
                StaticMatch::Full(i + 1),
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn eviction_and_compaction() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a", b"1"); // 34
        t.insert(b"b", b"2"); // 68
        assert_eq!((t.len(), t.size()), (2, 68));
        t.insert(b"c", b"3"); // evicts "a"
        assert_eq!(t.get(0), Some((&b"c"[..], &b"3"[..])));
        assert_eq!(t.get(1), Some((&b"b"[..], &b"2"[..])));
        assert_eq!(t.get(2), None);
        assert_eq!(t.find(b"b", b"2"), Some((1, true)));
        assert_eq!(t.find(b"b", b"9"), Some((1, false)));
        // Too large for the table: empties it.
        t.insert(&[b'x'; 60], &[b'y'; 20]);
        assert_eq!((t.len(), t.size()), (0, 0));
        // Many inserts cycle through the arena without growing it past its bound.
        for i in 0..1000u32 {
            let v = i.to_string();
            t.insert(b"k", v.as_bytes());
            assert_eq!(t.get(0).unwrap().1, v.as_bytes());
            assert!(t.arena.len() <= 2 * 256);
        }
        t.set_max_size(40);
        assert_eq!(t.len(), 1);
        t.set_max_size(0);
        assert!(t.is_empty());
    }
}
