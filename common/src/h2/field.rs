//! Field syntax (RFC 9113 8.2.1), shared by the message rules and the HPACK decoder,
//! which checks a table entry once when it is inserted so that fields indexed from the
//! table later need no second look.

/// Bytes allowed in a field name (8.2.1): no controls, space, DEL, non-ASCII, uppercase
/// or colon. One table load per byte.
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x21;
    while b < 0x7f {
        t[b] = !(b >= b'A' as usize && b <= b'Z' as usize) && b != b':' as usize;
        b += 1;
    }
    t
};

/// 8.2.1: names are lowercase with no controls, spaces, DEL, non-ASCII or colons.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| NAME_BYTE[usize::from(b)])
}

/// A field as a table entry: a pseudo-header's name is judged by the message rules (it
/// must be one they know), its value like any other.
pub(crate) fn valid_field(name: &[u8], value: &[u8]) -> bool {
    (name.first() == Some(&b':') || valid_name(name)) && valid_value(value)
}

/// 8.2.1: no NUL, CR or LF anywhere, no whitespace at either end.
pub(crate) fn valid_value(value: &[u8]) -> bool {
    if let (Some(&first), Some(&last)) = (value.first(), value.last()) {
        if matches!(first, b' ' | b'\t') || matches!(last, b' ' | b'\t') {
            return false;
        }
    }
    // Eight bytes at a time: only a word holding a byte below 0x0e (or a non-ASCII one,
    // which the trick cannot tell apart) is looked at byte by byte.
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let forbidden = |b: &u8| matches!(b, 0 | b'\r' | b'\n');
    let mut words = value.chunks_exact(8);
    for w in words.by_ref() {
        let x = u64::from_ne_bytes(w.try_into().expect("8 bytes"));
        if x.wrapping_sub(ONES * 0x0e) & !x & HIGHS != 0 && w.iter().any(forbidden) {
            return false;
        }
    }
    !words.remainder().iter().any(forbidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_bytes_at_every_position() {
        // The word-at-a-time scan must find a forbidden byte wherever it sits.
        for len in 1..20 {
            for at in 0..len {
                for bad in [0u8, b'\r', b'\n'] {
                    let mut v = vec![b'a'; len];
                    v[at] = bad;
                    assert!(!valid_value(&v), "{len} {at} {bad}");
                }
                let mut v = vec![b'a'; len];
                v[at] = if at % 2 == 0 { 0x0b } else { 0xc3 };
                assert!(valid_value(&v), "{len} {at}");
            }
        }
        assert!(valid_value(b""));
        assert!(!valid_value(b" a") && !valid_value(b"a\t"));
    }

    #[test]
    fn fields_as_table_entries() {
        assert!(valid_field(b":path", b"/"));
        assert!(!valid_field(b":path", b"/\n"));
        assert!(!valid_field(b"X", b"v"));
        assert!(valid_field(b"x", b""));
    }

    #[test]
    fn name_bytes() {
        for b in 0..=255u8 {
            let ok = (0x21..0x7f).contains(&b) && !b.is_ascii_uppercase() && b != b':';
            assert_eq!(valid_name(&[b'x', b]), ok, "{b:#x}");
        }
    }
}
