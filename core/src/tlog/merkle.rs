//! RFC 9162 section 2.1 Merkle trees over SHA-256: leaf and node hashing,
//! the tree head, an append-only builder that keeps only the right edge,
//! proof generation over stored node hashes, and proof verification.
//!
//! Generation reads *perfect* subtrees only (`NodeId`: 2^level leaves starting
//! at a multiple of 2^level), the nodes that never change once written, so a
//! store can keep them in a table or in tiles and never rewrite one.
//! Verification is pure and total: any input, however hostile (sizes 0,
//! indexes past the end, proofs of the wrong length, `u64::MAX`), gives an
//! error and never a panic.

use openssl::sha::Sha256;

pub const HASH_SIZE: usize = 32;

/// A SHA-256 Merkle tree hash.
pub type Hash = [u8; HASH_SIZE];

/// MTH of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    openssl::sha::sha256(b"")
}

/// MTH({d}) = SHA-256(0x00 || d).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x00]);
    h.update(leaf);
    h.finish()
}

/// SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0x01]);
    h.update(left);
    h.update(right);
    h.finish()
}

/// A perfect subtree: the 2^`level` leaves starting at `index << level`.
/// Level 0 nodes are leaf hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn leaf(index: u64) -> Self {
        Self { level: 0, index }
    }

    /// The leaves `[start, end)` this node covers, or `None` when that range
    /// does not fit in a `u64` tree size.
    pub fn leaf_range(&self) -> Option<(u64, u64)> {
        if self.level >= 64 {
            return None;
        }
        let width = 1u64 << self.level;
        let start = self.index.checked_mul(width)?;
        let end = start.checked_add(width)?;
        Some((start, end))
    }
}

/// Where proof generation reads node hashes: a store's table of leaf and
/// interior hashes, or tiles (`tlog::tiles`). Asked once per proof, for
/// every node it needs, so a store answers with one query. A table of leaf
/// hashes alone could answer a level-`l` node only by hashing 2^l leaves,
/// so a store keeps every node `TreeBuilder::append` returns (about two
/// hashes per leaf) or the tiles holding them.
pub trait HashReader {
    type Error;
    /// The hashes of `nodes`, in the same order. Only nodes of a tree the
    /// caller knows to exist are asked for.
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

/// Why a proof or tree head could not be produced from stored hashes.
#[derive(Debug, thiserror::Error)]
pub enum ProveError<E> {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("no consistency proof from tree size {old} to {new}")]
    BadSizes { old: u64, new: u64 },
    #[error("the hash reader returned {got} hashes for {asked} nodes")]
    ShortRead { asked: usize, got: usize },
    #[error("reading stored hashes: {0}")]
    Read(#[source] E),
}

/// Why a proof did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("tree size {new} is smaller than the earlier size {old}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyOldTree,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// The largest power of two strictly below `n` (n >= 2): RFC 9162's `k`.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The perfect subtrees whose right fold is MTH(D[lo:hi]), left to right.
/// Every range an RFC 9162 proof names starts at a multiple of the largest
/// power of two not above its width, which is what makes this exact.
fn perfect_nodes(mut lo: u64, hi: u64, out: &mut Vec<NodeId>) {
    while lo < hi {
        let width = 1u64 << (63 - (hi - lo).leading_zeros());
        let level = width.trailing_zeros() as u8;
        out.push(NodeId {
            level,
            index: lo >> level,
        });
        lo += width;
    }
}

fn fold_right(hashes: &[Hash]) -> Hash {
    match hashes.split_last() {
        None => empty_root(),
        Some((last, rest)) => rest
            .iter()
            .rev()
            .fold(*last, |acc, left| node_hash(left, &acc)),
    }
}

/// RFC 9162 2.1.3.1 PATH(m, D[n]) as leaf ranges, nearest the leaf first.
fn inclusion_ranges(index: u64, size: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi) = (0, size);
    let mut out = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    out
}

/// RFC 9162 2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as leaf
/// ranges, innermost first. Needs 0 < m <= n.
fn consistency_ranges(old: u64, new: u64) -> Vec<(u64, u64)> {
    let (mut lo, mut hi, mut m, mut whole) = (0, new, old, true);
    let mut out = Vec::new();
    loop {
        if m == hi - lo {
            if !whole {
                out.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            m -= k;
            lo += k;
            whole = false;
        }
    }
    out.reverse();
    out
}

/// The MTH of each range, from one batched read of perfect subtrees.
fn hash_ranges<R: HashReader>(
    reader: &R,
    ranges: &[(u64, u64)],
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    let mut nodes = Vec::new();
    let mut counts = Vec::with_capacity(ranges.len());
    for &(lo, hi) in ranges {
        let before = nodes.len();
        perfect_nodes(lo, hi, &mut nodes);
        counts.push(nodes.len() - before);
    }
    if nodes.is_empty() {
        return Ok(ranges.iter().map(|_| empty_root()).collect());
    }
    let hashes = reader.read_hashes(&nodes).map_err(ProveError::Read)?;
    if hashes.len() != nodes.len() {
        return Err(ProveError::ShortRead {
            asked: nodes.len(),
            got: hashes.len(),
        });
    }
    let mut at = 0;
    Ok(counts
        .into_iter()
        .map(|count| {
            let h = fold_right(&hashes[at..at + count]);
            at += count;
            h
        })
        .collect())
}

/// The tree head MTH(D[0:size]) from stored hashes.
pub fn tree_hash<R: HashReader>(reader: &R, size: u64) -> Result<Hash, ProveError<R::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    Ok(hash_ranges(reader, &[(0, size)])?[0])
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn prove_inclusion<R: HashReader>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    if index >= size {
        return Err(ProveError::IndexOutOfRange { index, size });
    }
    hash_ranges(reader, &inclusion_ranges(index, size))
}

/// The consistency proof from the tree of `old` leaves to the tree of `new`
/// leaves (`0 < old <= new`; equal sizes have the empty proof).
pub fn prove_consistency<R: HashReader>(
    reader: &R,
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, ProveError<R::Error>> {
    if old == 0 || old > new {
        return Err(ProveError::BadSizes { old, new });
    }
    hash_ranges(reader, &consistency_ranges(old, new))
}

/// The perfect subtrees making up the tree of `size` leaves, largest
/// (leftmost) first: what `TreeBuilder::resume` needs read back.
pub fn right_edge(size: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    perfect_nodes(0, size, &mut out);
    out
}

/// An append-only tree head builder holding only the right edge of the
/// tree (one hash per set bit of the size, the "compact range" [0, size)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeBuilder {
    size: u64,
    /// The perfect subtrees of `right_edge(size)`, left to right.
    edge: Vec<Hash>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuilderError {
    #[error("the tree is full")]
    Full,
    #[error("a tree of {size} leaves has {want} edge hashes, not {got}")]
    WrongEdge { size: u64, want: usize, got: usize },
}

impl TreeBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Continues a tree of `size` leaves from the hashes of
    /// `right_edge(size)`, in that order.
    pub fn from_edge(size: u64, edge: Vec<Hash>) -> Result<Self, BuilderError> {
        let want = size.count_ones() as usize;
        if edge.len() != want {
            return Err(BuilderError::WrongEdge {
                size,
                want,
                got: edge.len(),
            });
        }
        Ok(Self { size, edge })
    }

    /// Continues a tree of `size` leaves from stored hashes.
    pub fn resume<R: HashReader>(reader: &R, size: u64) -> Result<Self, ProveError<R::Error>> {
        let nodes = right_edge(size);
        if nodes.is_empty() {
            return Ok(Self::new());
        }
        let hashes = reader.read_hashes(&nodes).map_err(ProveError::Read)?;
        if hashes.len() != nodes.len() {
            return Err(ProveError::ShortRead {
                asked: nodes.len(),
                got: hashes.len(),
            });
        }
        Ok(Self { size, edge: hashes })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree head at the current size.
    pub fn root(&self) -> Hash {
        fold_right(&self.edge)
    }

    /// Appends one leaf hash and returns every perfect subtree it
    /// completes, the leaf first: exactly the hashes a store must keep to
    /// answer any later proof.
    pub fn append(&mut self, leaf: Hash) -> Result<Vec<(NodeId, Hash)>, BuilderError> {
        let index = self.size;
        let size = index.checked_add(1).ok_or(BuilderError::Full)?;
        let mut completed = vec![(NodeId::leaf(index), leaf)];
        let mut hash = leaf;
        let mut node = NodeId::leaf(index);
        // Each trailing one bit of the old size is a left sibling waiting
        // on the edge for exactly this leaf.
        while node.index & 1 == 1 {
            let Some(left) = self.edge.pop() else { break };
            hash = node_hash(&left, &hash);
            node = NodeId {
                level: node.level + 1,
                index: node.index >> 1,
            };
            completed.push((node, hash));
        }
        self.edge.push(hash);
        self.size = size;
        Ok(completed)
    }
}

/// The root that an RFC 9162 2.1.3.2 inclusion proof leads to.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// RFC 9162 2.1.3.2: is `leaf` (a leaf hash) at `index` in the tree of
/// `size` leaves whose head is `root`?
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// RFC 9162 2.1.4.2: is the tree of `new` leaves with head `new_root` an
/// append-only extension of the tree of `old` leaves with head `old_root`?
/// Equal sizes need the empty proof and equal roots; an empty old tree is
/// refused (every tree extends it, so there is nothing to check).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if new < old {
        return Err(ProofError::SizesOutOfOrder { old, new });
    }
    if old == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old == new {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // A power-of-two old tree is itself a node of the new one: the proof
    // leaves it out and the verifier starts from the old root.
    let (first, rest) = if old.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some(split) => split,
            None => return Err(ProofError::WrongLength),
        }
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr == *old_root && sr == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

#[cfg(test)]
mod tests;
