//! HPACK integers (RFC 7541 5.1): an N-bit prefix, then 7 bits per continuation byte.

use super::error::DecodeError;

/// Largest value we accept: anything above is far beyond every limit (table sizes,
/// string lengths) and only serves to overflow.
const MAX_VALUE: u64 = u32::MAX as u64;

/// Append `value` with an `prefix_bits`-bit prefix; `first` carries the bits above the
/// prefix (the representation's pattern).
pub fn encode(value: usize, prefix_bits: u8, first: u8, out: &mut Vec<u8>) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 128 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// Decode an integer from the start of `buf` (its first byte holds the prefix). Returns
/// the value and the bytes used.
pub fn decode(buf: &[u8], prefix_bits: u8) -> Result<(usize, usize), DecodeError> {
    let max_prefix = ((1u16 << prefix_bits) - 1) as u8;
    let first = *buf.first().ok_or(DecodeError::Truncated)?;
    let v = first & max_prefix;
    if v < max_prefix {
        return Ok((usize::from(v), 1));
    }
    let mut value = u64::from(max_prefix);
    let mut shift = 0u32;
    for (i, &b) in buf[1..].iter().enumerate() {
        // Leading zero continuation bytes are legal but bounded here: past 35 bits of
        // shift nothing fits `MAX_VALUE`.
        if shift > 28 {
            return Err(DecodeError::IntegerOverflow);
        }
        value += u64::from(b & 0x7f) << shift;
        if value > MAX_VALUE {
            return Err(DecodeError::IntegerOverflow);
        }
        if b & 0x80 == 0 {
            return Ok((value as usize, i + 2));
        }
        shift += 7;
    }
    Err(DecodeError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_examples() {
        // C.1.1: 10 with a 5-bit prefix; C.1.2: 1337 with 5 bits; C.1.3: 42 with 8 bits.
        for (value, prefix, bytes) in [
            (10usize, 5u8, &[0x0a][..]),
            (1337, 5, &[0x1f, 0x9a, 0x0a]),
            (42, 8, &[0x2a]),
            (31, 5, &[0x1f, 0x00]),
        ] {
            let mut out = Vec::new();
            encode(value, prefix, 0, &mut out);
            assert_eq!(out, bytes);
            assert_eq!(decode(bytes, prefix), Ok((value, bytes.len())));
        }
    }

    #[test]
    fn errors() {
        assert_eq!(decode(&[], 5), Err(DecodeError::Truncated));
        assert_eq!(decode(&[0x1f, 0x80], 5), Err(DecodeError::Truncated));
        assert_eq!(
            decode(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f], 5),
            Err(DecodeError::IntegerOverflow)
        );
        assert_eq!(
            decode(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], 5),
            Err(DecodeError::IntegerOverflow)
        );
        // Leading zero continuation bytes within the bound are fine.
        assert_eq!(decode(&[0x1f, 0x81, 0x80, 0x00], 5), Ok((32, 4)));
    }

    proptest! {
        #[test]
        fn round_trip(value in 0usize..=u32::MAX as usize, prefix in 1u8..=8, high in any::<u8>()) {
            let first = if prefix == 8 { 0 } else { high & !((1u8 << prefix) - 1) };
            let mut out = Vec::new();
            encode(value, prefix, first, &mut out);
            prop_assert_eq!(out[0] & !(((1u16 << prefix) - 1) as u8), first);
            prop_assert_eq!(decode(&out, prefix), Ok((value, out.len())));
        }
    }
}
