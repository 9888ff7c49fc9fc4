//! PAX extended header records (`"<len> <key>=<value>\n"`), kept sorted by key
//! so the same metadata always encodes to the same bytes.

use std::collections::BTreeMap;

/// An ordered set of PAX records; keys and values are raw bytes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct PaxRecords(BTreeMap<Vec<u8>, Vec<u8>>);

impl PaxRecords {
    pub(crate) fn insert(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.insert(key.into(), value.into());
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The body of a PAX `x` entry: all records, sorted by key bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (key, value) in &self.0 {
            encode_record(&mut out, key, value);
        }
        out
    }
}

/// Appends one record. The length prefix counts itself, so adding a digit to
/// it may push the total over a power of ten and need one more digit.
pub(crate) fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // " " + "=" + "\n"
    let rest = key.len() + value.len() + 3;
    // Fixed point of len = rest + digits(len); it converges in at most two steps.
    let mut len = rest + decimal_digits(rest);
    while len != rest + decimal_digits(len) {
        len = rest + decimal_digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn decimal_digits(mut n: usize) -> usize {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value_len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(&mut out, key.as_bytes(), &vec![b'v'; value_len]);
        out
    }

    /// The length prefix must equal the record's byte length, including across
    /// the 9/10, 99/100 and 999/1000 boundaries where the prefix grows.
    #[test]
    fn length_prefix_counts_itself() {
        for value_len in 0..1200 {
            let rec = record("k", value_len);
            let space = rec.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rec[..space]).unwrap().parse().unwrap();
            assert_eq!(len, rec.len(), "value_len {value_len}");
        }
    }

    #[test]
    fn boundary_examples() {
        // "k=" + "\n" + " " = 4 bytes; 4 + 1 digit = 5 <= 9
        assert_eq!(record("k", 0), b"5 k=\n");
        // 9 bytes total with 1 digit: rest = 8 -> "9 k=vvvv\n"
        assert_eq!(record("k", 4), b"9 k=vvvv\n");
        // rest = 9 -> 10 would have 2 digits -> 11
        assert_eq!(record("k", 5).len(), 11);
        assert!(record("k", 5).starts_with(b"11 "));
        // rest = 97 -> 99 fits in 2 digits
        assert_eq!(record("k", 93).len(), 99);
        // rest = 98 -> 100 needs 3 digits -> 101
        assert_eq!(record("k", 94).len(), 101);
        assert!(record("k", 94).starts_with(b"101 "));
    }

    #[test]
    fn records_are_sorted_by_key_bytes() {
        let mut pax = PaxRecords::default();
        pax.insert("path", "b");
        pax.insert("SCHILY.xattr.user.z", "1");
        pax.insert("SCHILY.xattr.security.selinux", "2");
        pax.insert("linkpath", "a");
        let text = String::from_utf8(pax.encode()).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split_once(' ').unwrap().1.split_once('=').unwrap().0)
            .collect();
        assert_eq!(
            keys,
            [
                "SCHILY.xattr.security.selinux",
                "SCHILY.xattr.user.z",
                "linkpath",
                "path"
            ]
        );
    }
}
