//! The server's AVL `SequenceSet` encoding (used for per-block delete maps in `index.db`).
//!
//! Layout (spec §5.2): `u8 22, u8 version, u32 LE nodes, u32 LE count`, then the nodes in
//! pre-order, each `u64 LE base, N × u64 LE bitmap words, u16 LE height` with N = 32 (v2) or
//! 64 (v1). Sequence `base + 64·i + b` is present when bit `b` of word `i` is set.
use crate::base::bytes::{Cursor, ParseError};

/// File-store magic shared with o.dat / legacy index files.
pub const MAGIC: u8 = 22;
const BITS_PER_WORD: u64 = 64;
const V2_WORDS: usize = 32;
const V1_WORDS: usize = 64;
const HEADER_LEN: usize = 10;

fn node_len(words: usize) -> usize {
    8 + words * 8 + 2
}

/// Decode an encoded sequence set from the start of `buf`.
///
/// Returns the sorted member sequences and the number of bytes the encoding occupies (the buffer
/// may continue with unrelated data). Checks: magic/version, node count fits the buffer, node
/// bases aligned to the node span (2048 for v2, 4096 for v1), no two nodes with the same base,
/// no sequence overflowing u64, and decoded count == header count.
pub fn decode_seqset(buf: &[u8]) -> Result<(Vec<u64>, usize), ParseError> {
    let mut c = Cursor::new(buf);
    let magic = c.u8()?;
    if magic != MAGIC {
        return Err(ParseError::invalid(
            0,
            format!("sequence set: bad magic {magic} (want {MAGIC})"),
        ));
    }
    let version = c.u8()?;
    let words = match version {
        1 => V1_WORDS,
        2 => V2_WORDS,
        v => {
            return Err(ParseError::invalid(
                1,
                format!("sequence set: unknown version {v}"),
            ))
        }
    };
    let num_nodes = c.u32le()? as usize;
    let count = c.u32le()? as usize;
    let nlen = node_len(words);
    let need = (num_nodes as u128) * (nlen as u128);
    if need > c.remaining() as u128 {
        return Err(ParseError::invalid(
            2,
            format!(
                "sequence set: {num_nodes} nodes need {need} bytes, only {} left",
                c.remaining()
            ),
        ));
    }
    let span = words as u64 * BITS_PER_WORD;
    // Every seq needs one bit, so the header count cannot exceed what the nodes can hold.
    if count as u128 > num_nodes as u128 * span as u128 {
        return Err(ParseError::invalid(
            6,
            format!("sequence set: count {count} exceeds capacity of {num_nodes} nodes"),
        ));
    }
    let mut seqs: Vec<u64> = Vec::with_capacity(count);
    let mut bases: Vec<(u64, usize)> = Vec::with_capacity(num_nodes);
    for _ in 0..num_nodes {
        let node_off = c.pos();
        let base = c.u64le()?;
        if base % span != 0 {
            return Err(ParseError::invalid(
                node_off,
                format!("sequence set: node base {base} not a multiple of {span}"),
            ));
        }
        if base.checked_add(span - 1).is_none() {
            return Err(ParseError::invalid(
                node_off,
                format!("sequence set: node base {base} overflows"),
            ));
        }
        bases.push((base, node_off));
        for w in 0..words as u64 {
            let mut word = c.u64le()?;
            while word != 0 {
                let b = u64::from(word.trailing_zeros());
                seqs.push(base + w * BITS_PER_WORD + b);
                if seqs.len() > count {
                    return Err(ParseError::invalid(
                        node_off,
                        format!("sequence set: more members than the header count {count}"),
                    ));
                }
                word &= word - 1;
            }
        }
        let _height = c.u16le()?;
    }
    bases.sort_unstable();
    for pair in bases.windows(2) {
        if let [a, b] = pair {
            if a.0 == b.0 {
                return Err(ParseError::invalid(
                    b.1,
                    format!("sequence set: duplicate node base {}", b.0),
                ));
            }
        }
    }
    if seqs.len() != count {
        return Err(ParseError::invalid(
            6,
            format!(
                "sequence set: header count {count} but {} members decoded",
                seqs.len()
            ),
        ));
    }
    seqs.sort_unstable();
    Ok((seqs, c.pos()))
}

/// One node of the in-memory AVL tree used to reproduce the server's tree shape.
struct Node {
    base: u64,
    bits: [u64; V2_WORDS],
    left: Option<usize>,
    right: Option<usize>,
    height: i32,
}

#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
    root: Option<usize>,
    size: usize,
}

const SPAN: u64 = V2_WORDS as u64 * BITS_PER_WORD;

impl Tree {
    fn h(&self, n: Option<usize>) -> i32 {
        n.map_or(0, |i| self.nodes[i].height)
    }
    fn fix_height(&mut self, n: usize) {
        let hl = self.h(self.nodes[n].left);
        let hr = self.h(self.nodes[n].right);
        self.nodes[n].height = hl.max(hr) + 1;
    }
    fn balance(&self, n: Option<usize>) -> i32 {
        match n {
            None => 0,
            Some(i) => self.h(self.nodes[i].left) - self.h(self.nodes[i].right),
        }
    }
    fn rotate_left(&mut self, n: usize) -> usize {
        match self.nodes[n].right {
            Some(r) => {
                self.nodes[n].right = self.nodes[r].left;
                self.nodes[r].left = Some(n);
                self.fix_height(n);
                self.fix_height(r);
                r
            }
            None => {
                self.fix_height(n);
                n
            }
        }
    }
    fn rotate_right(&mut self, n: usize) -> usize {
        match self.nodes[n].left {
            Some(l) => {
                self.nodes[n].left = self.nodes[l].right;
                self.nodes[l].right = Some(n);
                self.fix_height(n);
                self.fix_height(l);
                l
            }
            None => {
                self.fix_height(n);
                n
            }
        }
    }
    fn set(&mut self, n: usize, seq: u64) {
        let off = seq - self.nodes[n].base;
        let w = (off / BITS_PER_WORD) as usize;
        let mask = 1u64 << (off % BITS_PER_WORD);
        if self.nodes[n].bits[w] & mask == 0 {
            self.nodes[n].bits[w] |= mask;
            self.size += 1;
        }
    }
    /// Insert below `n` (None = empty subtree); returns the new subtree root.
    fn insert_at(&mut self, n: Option<usize>, seq: u64) -> usize {
        let Some(n) = n else {
            let idx = self.nodes.len();
            self.nodes.push(Node {
                base: seq / SPAN * SPAN,
                bits: [0; V2_WORDS],
                left: None,
                right: None,
                height: 1,
            });
            self.set(idx, seq);
            return idx;
        };
        let base = self.nodes[n].base;
        if seq < base {
            let l = self.insert_at(self.nodes[n].left, seq);
            self.nodes[n].left = Some(l);
        } else if seq - base >= SPAN {
            let r = self.insert_at(self.nodes[n].right, seq);
            self.nodes[n].right = Some(r);
        } else {
            self.set(n, seq);
        }
        self.fix_height(n);
        let bf = self.balance(Some(n));
        if bf > 1 {
            if let Some(l) = self.nodes[n].left {
                if self.balance(Some(l)) < 0 {
                    let nl = self.rotate_left(l);
                    self.nodes[n].left = Some(nl);
                }
            }
            return self.rotate_right(n);
        }
        if bf < -1 {
            if let Some(r) = self.nodes[n].right {
                if self.balance(Some(r)) > 0 {
                    let nr = self.rotate_right(r);
                    self.nodes[n].right = Some(nr);
                }
            }
            return self.rotate_left(n);
        }
        n
    }
    fn insert(&mut self, seq: u64) {
        let root = self.insert_at(self.root, seq);
        self.root = Some(root);
    }
    fn preorder(&self, out: &mut Vec<u8>) {
        let mut stack: Vec<usize> = self.root.into_iter().collect();
        while let Some(i) = stack.pop() {
            let n = &self.nodes[i];
            out.extend_from_slice(&n.base.to_le_bytes());
            for w in n.bits {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&(n.height as u16).to_le_bytes());
            if let Some(r) = n.right {
                stack.push(r);
            }
            if let Some(l) = n.left {
                stack.push(l);
            }
        }
    }
}

/// Encode `seqs` as a version-2 sequence set, building the tree exactly as the server does when
/// the sequences are inserted one by one in the given order (duplicates are ignored). For a
/// server-identical encoding pass the sequences in the order they were deleted; sorted order
/// reproduces every single-node set and any set the server built by ascending inserts.
pub fn encode_seqset(seqs: &[u64]) -> Vec<u8> {
    let mut t = Tree::default();
    for &s in seqs {
        t.insert(s);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + t.nodes.len() * node_len(V2_WORDS));
    out.push(MAGIC);
    out.push(2);
    out.extend_from_slice(&(t.nodes.len() as u32).to_le_bytes());
    out.extend_from_slice(&(t.size as u32).to_le_bytes());
    t.preorder(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    /// The ORDERS block-1 delete map exactly as 2.15.1 wrote it into index.db.
    fn orders_dmap() -> Vec<u8> {
        let d = testdata::sample("v2.15.1-plain");
        let f = testdata::read(
            &d,
            "v2.15.1-plain",
            "store/jetstream/$G/streams/ORDERS/msgs/index.db",
        );
        let pos = f
            .windows(2)
            .position(|w| w == [22, 2])
            .expect("dmap present");
        f[pos..pos + HEADER_LEN + node_len(V2_WORDS)].to_vec()
    }

    #[test]
    fn decodes_and_reencodes_real_orders_dmap() {
        let raw = orders_dmap();
        let (seqs, n) = decode_seqset(&raw).unwrap();
        assert_eq!(seqs, vec![3, 6]);
        assert_eq!(n, 276);
        assert_eq!(encode_seqset(&[3, 6]), raw);
        assert_eq!(encode_seqset(&[6, 3, 6]), raw);
    }

    #[test]
    fn multi_block_dmaps_byte_identical() {
        let d = testdata::sample("v2.15.1-plain");
        let f = testdata::read(
            &d,
            "v2.15.1-plain",
            "store/jetstream/$G/streams/MULTI/msgs/index.db",
        );
        let mut found = Vec::new();
        let mut i = 0;
        while let Some(p) = f[i..].windows(2).position(|w| w == [22, 2]) {
            let start = i + p;
            let (seqs, n) = decode_seqset(&f[start..]).unwrap();
            assert_eq!(encode_seqset(&seqs), f[start..start + n].to_vec());
            found.extend(seqs);
            i = start + n;
        }
        assert_eq!(found, vec![10, 40]);
    }

    #[test]
    fn roundtrip_many_shapes() {
        let sets: Vec<Vec<u64>> = vec![
            vec![],
            vec![0],
            vec![u64::MAX - 1, u64::MAX],
            (1..10_000).step_by(3).collect(),
            (0..200).map(|i| i * 5000).collect(),
            (0..200).rev().map(|i| i * 7001 + 3).collect(),
        ];
        for s in sets {
            let enc = encode_seqset(&s);
            let (dec, n) = decode_seqset(&enc).unwrap();
            assert_eq!(n, enc.len());
            let mut want = s.clone();
            want.sort_unstable();
            want.dedup();
            assert_eq!(dec, want);
            // AVL invariant: heights stored are consistent with a balanced tree (root height small).
        }
    }

    #[test]
    fn avl_shape_matches_server_rules() {
        // Ascending inserts into 3 distinct nodes rotate to a root with two children (height 2).
        let enc = encode_seqset(&[1, 3000, 5000]);
        let nl = node_len(V2_WORDS);
        let base_at =
            |i: usize| u64::from_le_bytes(enc[10 + i * nl..18 + i * nl].try_into().unwrap());
        let h_at = |i: usize| {
            u16::from_le_bytes(
                enc[10 + i * nl + nl - 2..10 + i * nl + nl]
                    .try_into()
                    .unwrap(),
            )
        };
        assert_eq!((base_at(0), base_at(1), base_at(2)), (2048, 0, 4096));
        assert_eq!((h_at(0), h_at(1), h_at(2)), (2, 1, 1));
    }

    #[test]
    fn v1_nodes_decode() {
        let mut b = vec![22u8, 1];
        b.extend_from_slice(&1u32.to_le_bytes());
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&4096u64.to_le_bytes());
        let mut words = [0u64; 64];
        words[0] = 0b101;
        words[63] = 1 << 63;
        for w in words {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(&1u16.to_le_bytes());
        let len = b.len();
        b.push(99); // trailing data not consumed
        let (seqs, n) = decode_seqset(&b).unwrap();
        assert_eq!(seqs, vec![4096, 4098, 8191]);
        assert_eq!(n, len);
        assert_eq!(len, 10 + 522);
        let mut bad = b.clone();
        bad[6] = 2; // header count 2 but 3 members
        assert!(decode_seqset(&bad).is_err());
        let mut bad = b.clone();
        bad[11] = 0x08; // base 2048: not a multiple of 4096 for v1
        assert!(decode_seqset(&bad).is_err());
    }

    #[test]
    fn hostile_inputs() {
        let raw = orders_dmap();
        for cut in 0..raw.len() {
            assert!(decode_seqset(&raw[..cut]).is_err(), "cut {cut}");
        }
        let mut bad = raw.clone();
        bad[6] = 3; // count 3 vs 2 members
        assert!(decode_seqset(&bad).is_err());
        let mut bad = raw.clone();
        bad[10] = 1; // base 1: misaligned
        assert!(decode_seqset(&bad).is_err());
        let mut bad = raw.clone();
        bad[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_seqset(&bad).is_err());
        let mut bad = raw.clone();
        bad[1] = 3;
        assert!(decode_seqset(&bad).is_err());
        // Two nodes with the same base.
        let mut dup = raw.clone();
        dup[2] = 2;
        dup[6] = 4;
        dup.extend_from_slice(&raw[10..]);
        assert!(decode_seqset(&dup).is_err());
    }
}
