//! The RLE / bit-packed hybrid encoding of dictionary indices, definition levels and
//! booleans, with a bit unpacker specialized for every width.

/// Dictionary indices: the RLE / bit-packed hybrid encoding.
#[derive(Debug, Default)]
pub(super) struct Hybrid {
    pos: usize,
    bw: usize,
    rle_left: usize,
    rle_val: u32,
    bp_left: usize,
    bp_bit: usize,
    /// Bit where the current bit-packed run starts (its groups of 8 are byte-aligned).
    bp_start: usize,
}

impl Hybrid {
    pub(super) fn new(pos: usize, bw: usize) -> Result<Hybrid, String> {
        if bw > 32 {
            return Err(format!("dictionary index bit width {bw} is invalid"));
        }
        Ok(Hybrid { pos, bw, ..Default::default() })
    }

    /// `count` values of width 1 bit-packed from byte `pos`, without run headers (a PLAIN
    /// boolean page).
    pub(super) fn bit_packed_bools(pos: usize, count: usize) -> Hybrid {
        // No run follows the values: reading past them is an error, as for a cut-off run.
        Hybrid { pos: usize::MAX, bw: 1, bp_bit: pos * 8, bp_start: pos * 8, bp_left: count, ..Default::default() }
    }

    pub(super) fn bit_width(&self) -> usize {
        self.bw
    }

    fn next_run(&mut self, buf: &[u8]) -> Result<(), String> {
        let mut h: u64 = 0;
        let mut shift = 0;
        loop {
            let b = *buf.get(self.pos).ok_or("dictionary indices end early")?;
            self.pos += 1;
            h |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 56 {
                return Err("dictionary index run header is invalid".into());
            }
        }
        if h & 1 == 1 {
            let groups = (h >> 1) as usize;
            let bytes = groups.saturating_mul(self.bw);
            let avail = buf.len().saturating_sub(self.pos);
            // A final run may be cut short; only whole values that are present count.
            let values = match (avail * 8).checked_div(self.bw) {
                Some(present) => groups.saturating_mul(8).min(present),
                None => groups.saturating_mul(8),
            };
            self.bp_bit = self.pos * 8;
            self.bp_start = self.bp_bit;
            self.bp_left = values;
            self.pos += bytes.min(avail);
        } else {
            let nbytes = self.bw.div_ceil(8);
            let raw = buf.get(self.pos..self.pos + nbytes).ok_or("dictionary indices end early")?;
            let mut v = [0u8; 4];
            v[..nbytes].copy_from_slice(raw);
            self.pos += nbytes;
            self.rle_val = u32::from_le_bytes(v);
            // The value's bytes can hold more than `bw` bits; bit-packed values are masked to
            // `bw`, so callers bound indices by the width alone (`Cursor::indices`).
            if u64::from(self.rle_val) >> self.bw != 0 {
                return Err(format!("a run value {} is wider than its bit width {}", self.rle_val, self.bw));
            }
            self.rle_left = (h >> 1) as usize;
        }
        Ok(())
    }

    #[inline]
    fn bits(buf: &[u8], bit: usize, mask: u64) -> u32 {
        let byte = bit >> 3;
        let word = match buf.get(byte..byte + 8) {
            Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
            None => {
                let mut w = [0u8; 8];
                let tail = &buf[byte.min(buf.len())..];
                w[..tail.len()].copy_from_slice(tail);
                u64::from_le_bytes(w)
            }
        };
        ((word >> (bit & 7)) & mask) as u32
    }

    /// Appends the next `n` indices to `out`.
    pub(super) fn read(&mut self, buf: &[u8], n: usize, out: &mut Vec<u32>) -> Result<(), String> {
        let mask = (1u64 << self.bw) - 1;
        let mut need = n;
        while need > 0 {
            if self.rle_left > 0 {
                let k = need.min(self.rle_left);
                out.extend(std::iter::repeat_n(self.rle_val, k));
                self.rle_left -= k;
                need -= k;
            } else if self.bp_left > 0 {
                let k = need.min(self.bp_left);
                let bw = self.bw;
                if bw == 0 {
                    out.extend(std::iter::repeat_n(0, k));
                } else {
                    let mut j = 0;
                    // Values up to the next group boundary one by one, then whole groups of 8
                    // with a width-specialized unpacker, then the tail one by one.
                    while j < k && !(self.bp_bit - self.bp_start).is_multiple_of(8 * bw) {
                        out.push(Hybrid::bits(buf, self.bp_bit, mask));
                        self.bp_bit += bw;
                        j += 1;
                    }
                    let byte = self.bp_bit / 8;
                    let groups = ((k - j) / 8).min(buf.len().saturating_sub(byte) / bw);
                    unpack_groups(bw, &buf[byte..], groups, out);
                    self.bp_bit += groups * 8 * bw;
                    j += groups * 8;
                    while j < k {
                        out.push(Hybrid::bits(buf, self.bp_bit, mask));
                        self.bp_bit += bw;
                        j += 1;
                    }
                }
                self.bp_left -= k;
                need -= k;
            } else {
                self.next_run(buf)?;
            }
        }
        Ok(())
    }

    pub(super) fn skip(&mut self, buf: &[u8], n: usize) -> Result<(), String> {
        let mut need = n;
        while need > 0 {
            if self.rle_left > 0 {
                let k = need.min(self.rle_left);
                self.rle_left -= k;
                need -= k;
            } else if self.bp_left > 0 {
                let k = need.min(self.bp_left);
                self.bp_bit += k * self.bw;
                self.bp_left -= k;
                need -= k;
            } else {
                self.next_run(buf)?;
            }
        }
        Ok(())
    }

    /// Whether the next `n` values all equal `v` (definition levels: is the page free of nulls).
    pub(super) fn all_equal(&mut self, buf: &[u8], n: usize, v: u32) -> Result<bool, String> {
        let mask = (1u64 << self.bw) - 1;
        let mut need = n;
        while need > 0 {
            if self.rle_left > 0 {
                if self.rle_val != v {
                    return Ok(false);
                }
                let k = need.min(self.rle_left);
                self.rle_left -= k;
                need -= k;
            } else if self.bp_left > 0 {
                let k = need.min(self.bp_left);
                if (0..k).any(|j| Hybrid::bits(buf, self.bp_bit + j * self.bw, mask) != v) {
                    return Ok(false);
                }
                self.bp_bit += k * self.bw;
                self.bp_left -= k;
                need -= k;
            } else {
                self.next_run(buf)?;
            }
        }
        Ok(true)
    }
}

/// Unpacks `groups` whole groups of 8 bit-packed values from the start of `buf` (which may
/// extend past them: the rest of the page).
fn unpack_groups(bw: usize, buf: &[u8], groups: usize, out: &mut Vec<u32>) {
    macro_rules! widths {
        ($($w:literal)*) => {
            match bw {
                $($w => unpack::<$w>(buf, groups, out),)*
                _ => {}
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);
}

/// `unpack_groups` for one width: every shift and offset is a constant. Each value is one
/// unaligned 8-byte load straight from the page; only the last groups of a page, where
/// such a load would run past the end, go through a zero-padded copy.
#[inline(always)]
fn unpack<const BW: usize>(buf: &[u8], groups: usize, out: &mut Vec<u32>) {
    let mask: u64 = (1u64 << BW) - 1;
    let start = out.len();
    out.resize(start + groups * 8, 0);
    let word = |s: &[u8], o: usize| u64::from_le_bytes(s[o..o + 8].try_into().unwrap_or([0; 8]));
    for (g, d) in out[start..].chunks_exact_mut(8).enumerate() {
        let base = g * BW;
        let padded;
        let s: &[u8] = match buf.get(base..base + BW + 8) {
            Some(s) => s,
            None => {
                let mut b = [0u8; 40];
                b[..BW].copy_from_slice(&buf[base..base + BW]);
                padded = b;
                &padded[..BW + 8]
            }
        };
        for (j, v) in d.iter_mut().enumerate() {
            let bit = j * BW;
            *v = ((word(s, bit / 8) >> (bit % 8)) & mask) as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_value_wider_than_its_bit_width_is_an_error() {
        // An RLE run of 4 × 68 at bit width 4: the byte holds 68, four bits cannot.
        let mut h = Hybrid::new(0, 4).unwrap();
        let err = h.read(&[4 << 1, 68], 4, &mut vec![]).unwrap_err();
        assert!(err.contains("wider than its bit width"), "{err}");
    }

    #[test]
    fn hybrid_decodes_rle_and_bit_packed_runs() {
        // RLE run of 5 × 3 (bw 2), then one bit-packed group of 8 values 0..8 (bw 3).
        let mut buf = vec![5 << 1, 3];
        let values: Vec<u32> = (0..8).collect();
        let mut bits: u64 = 0;
        for (i, v) in values.iter().enumerate() {
            bits |= u64::from(*v) << (3 * i);
        }
        let mut h = Hybrid::new(0, 2).unwrap();
        let mut out = vec![];
        h.read(&buf, 5, &mut out).unwrap();
        assert_eq!(out, vec![3; 5]);
        buf = vec![(1 << 1) | 1];
        buf.extend_from_slice(&bits.to_le_bytes()[..3]);
        let mut h = Hybrid::new(0, 3).unwrap();
        out.clear();
        h.read(&buf, 2, &mut out).unwrap();
        h.skip(&buf, 3).unwrap();
        h.read(&buf, 3, &mut out).unwrap();
        assert_eq!(out, vec![0, 1, 5, 6, 7]);
        assert!(h.read(&buf, 1, &mut out).is_err(), "reading past the end is an error, not a panic");
        assert!(Hybrid::new(0, 33).is_err());
    }

    #[test]
    fn bit_packed_runs_of_every_width_decode_in_any_split() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for bw in 1..=32usize {
            let n = 8 * 37;
            let mask = (1u64 << bw) - 1;
            let values: Vec<u32> = (0..n).map(|_| (next() & mask) as u32).collect();
            // One bit-packed run of n / 8 groups, then an RLE run of 3 × 1.
            let mut buf = vec![];
            let mut h = ((n / 8) << 1 | 1) as u64;
            loop {
                let b = (h & 0x7f) as u8;
                h >>= 7;
                buf.push(if h > 0 { b | 0x80 } else { b });
                if h == 0 {
                    break;
                }
            }
            let mut bits = vec![0u8; n * bw / 8];
            for (i, v) in values.iter().enumerate() {
                for b in 0..bw {
                    if v >> b & 1 == 1 {
                        bits[(i * bw + b) / 8] |= 1 << ((i * bw + b) % 8);
                    }
                }
            }
            buf.extend_from_slice(&bits);
            buf.push(3 << 1);
            buf.extend_from_slice(&1u32.to_le_bytes()[..bw.div_ceil(8)]);
            let mut want = values.clone();
            want.extend([1, 1, 1]);
            for split in [1usize, 5, 8, 13, 64, 100] {
                let mut h = Hybrid::new(0, bw).unwrap();
                let mut out = vec![];
                let mut at = 0;
                while at < want.len() {
                    let k = split.min(want.len() - at);
                    if at % 3 == 2 {
                        h.skip(&buf, k).unwrap();
                        out.extend_from_slice(&want[at..at + k]);
                    } else {
                        h.read(&buf, k, &mut out).unwrap();
                    }
                    at += k;
                }
                assert_eq!(out, want, "width {bw}, reads of {split}");
            }
        }
    }
}
