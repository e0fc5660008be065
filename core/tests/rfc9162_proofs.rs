//! The log's proofs (`isac_core::tlog::merkle`) checked by an implementation
//! written here, independently, from RFC 9162: the tree head by the
//! definition in section 2.1.1, inclusion verification by the algorithm of
//! section 2.1.3.2 and consistency verification by section 2.1.4.2. Every
//! tree size from 1 to 300, inclusion for every leaf, consistency for every
//! pair of sizes; altered proofs are refused by both implementations.

use std::collections::HashMap;

use isac_core::tlog::merkle::{
    prove_consistency, prove_inclusion, verify_consistency, verify_inclusion, HashReader, NodeId,
    TreeBuilder,
};
use isac_core::tlog::Hash;

const MAX_SIZE: u64 = 300;

// === RFC 9162, written from the text ===

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = openssl::sha::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finish()
}

fn rfc_leaf(d: &[u8]) -> Hash {
    sha256(&[&[0x00], d])
}

fn rfc_node(l: &Hash, r: &Hash) -> Hash {
    sha256(&[&[0x01], l, r])
}

/// 2.1.1: MTH(D[n]) with k the largest power of two smaller than n.
fn rfc_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            rfc_node(&rfc_mth(&leaves[..k]), &rfc_mth(&leaves[k..]))
        }
    }
}

/// 2.1.3.2, step by step.
fn rfc_verify_inclusion(
    leaf_index: u64,
    tree_size: u64,
    hash: &Hash,
    path: &[Hash],
    root: &Hash,
) -> bool {
    if leaf_index >= tree_size {
        return false;
    }
    let (mut f, mut s) = (leaf_index, tree_size - 1);
    let mut r = *hash;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = rfc_node(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = rfc_node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// 2.1.4.2, step by step (first < second; equal sizes need no proof).
fn rfc_verify_consistency(
    first: u64,
    second: u64,
    first_hash: &Hash,
    second_hash: &Hash,
    path: &[Hash],
) -> bool {
    if path.is_empty() || first == 0 || first >= second {
        return false;
    }
    let mut path = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_hash);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = rfc_node(c, &fr);
            sr = rfc_node(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = rfc_node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_hash && sr == *second_hash && s == 0
}

// === the implementation under test, over an in-memory store ===

struct Nodes(HashMap<NodeId, Hash>);

impl HashReader for Nodes {
    type Error = String;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, String> {
        nodes
            .iter()
            .map(|n| self.0.get(n).copied().ok_or(format!("no node {n:?}")))
            .collect()
    }
}

struct World {
    leaves: Vec<Hash>,
    roots: Vec<Hash>,
    nodes: Nodes,
}

fn world() -> World {
    let leaves: Vec<Hash> = (0..MAX_SIZE)
        .map(|i| rfc_leaf(format!("statement {i}").as_bytes()))
        .collect();
    let mut builder = TreeBuilder::new();
    let mut nodes = HashMap::new();
    let mut roots = vec![sha256(&[])];
    for (i, leaf) in leaves.iter().enumerate() {
        nodes.extend(builder.append(*leaf).unwrap());
        let root = rfc_mth(&leaves[..=i]);
        assert_eq!(builder.root(), root, "tree head at size {}", i + 1);
        roots.push(root);
    }
    World {
        leaves,
        roots,
        nodes: Nodes(nodes),
    }
}

fn altered(proof: &[Hash]) -> Vec<Vec<Hash>> {
    let mut out = Vec::new();
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i][i % 32] ^= 1 << (i % 8);
        out.push(p);
    }
    if !proof.is_empty() {
        out.push(proof[..proof.len() - 1].to_vec());
        let mut swapped = proof.to_vec();
        swapped.reverse();
        if swapped != proof {
            out.push(swapped);
        }
    }
    let mut longer = proof.to_vec();
    longer.push([7; 32]);
    out.push(longer);
    out
}

#[test]
fn inclusion_of_every_leaf_in_every_tree_up_to_300() {
    let w = world();
    let mut checked = 0;
    for size in 1..=MAX_SIZE {
        let root = &w.roots[size as usize];
        for index in 0..size {
            let leaf = &w.leaves[index as usize];
            let proof = prove_inclusion(&w.nodes, index, size).unwrap();
            assert!(
                rfc_verify_inclusion(index, size, leaf, &proof, root),
                "leaf {index} in size {size}"
            );
            assert!(verify_inclusion(index, size, leaf, &proof, root).is_ok());
            // The same proof for another leaf, or at another size, fails.
            let other = &w.leaves[((index + 1) % size) as usize];
            if size > 1 {
                assert!(!rfc_verify_inclusion(index, size, other, &proof, root));
            }
            if index % 7 == 0 {
                for bad in altered(&proof) {
                    assert!(!rfc_verify_inclusion(index, size, leaf, &bad, root));
                    assert!(verify_inclusion(index, size, leaf, &bad, root).is_err());
                }
            }
            checked += 1;
        }
        assert!(!rfc_verify_inclusion(size, size, &w.leaves[0], &[], root));
        assert!(verify_inclusion(size, size, &w.leaves[0], &[], root).is_err());
    }
    assert_eq!(checked, MAX_SIZE * (MAX_SIZE + 1) / 2);
}

#[test]
fn consistency_between_every_pair_of_sizes_up_to_300() {
    let w = world();
    let mut checked = 0;
    for second in 2..=MAX_SIZE {
        for first in 1..second {
            let (a, b) = (&w.roots[first as usize], &w.roots[second as usize]);
            let proof = prove_consistency(&w.nodes, first, second).unwrap();
            assert!(
                rfc_verify_consistency(first, second, a, b, &proof),
                "{first} -> {second}"
            );
            assert!(verify_consistency(first, second, a, b, &proof).is_ok());
            // A different history at either end fails.
            let forged = [0x42; 32];
            assert!(!rfc_verify_consistency(first, second, &forged, b, &proof));
            assert!(!rfc_verify_consistency(first, second, a, &forged, &proof));
            assert!(verify_consistency(first, second, &forged, b, &proof).is_err());
            assert!(verify_consistency(first, second, a, &forged, &proof).is_err());
            if (first + second) % 11 == 0 {
                for bad in altered(&proof) {
                    assert!(!rfc_verify_consistency(first, second, a, b, &bad));
                    assert!(verify_consistency(first, second, a, b, &bad).is_err());
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, MAX_SIZE * (MAX_SIZE - 1) / 2);
}
