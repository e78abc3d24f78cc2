//! Lowercase hex, the text form of keys, signatures and digests everywhere in Tally.

/// Lowercase hex of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[(byte >> 4) as usize] as char);
        text.push(DIGITS[(byte & 0x0f) as usize] as char);
    }
    text
}

/// Exactly `length` bytes from hex (either case), or a message naming the problem.
pub fn decode(text: &str, length: usize) -> Result<Vec<u8>, String> {
    if text.len() != length * 2 {
        return Err(format!("must be {} hex characters, got {}", length * 2, text.len()));
    }
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match (digit(pair[0]), digit(pair[1])) {
            (Some(high), Some(low)) => Ok(high << 4 | low),
            _ => Err("must contain only hex digits 0-9 and a-f".to_string()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_problems() {
        let bytes = [0x00, 0x7f, 0xff, 0xa5];
        assert_eq!(encode(&bytes), "007fffa5");
        assert_eq!(decode("007FFFa5", 4).unwrap(), bytes);
        assert!(decode("007fff", 4).unwrap_err().contains("8 hex characters"));
        assert!(decode("007fffzz", 4).unwrap_err().contains("hex digits"));
    }
}
