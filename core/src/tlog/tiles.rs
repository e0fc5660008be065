//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the Merkle tree as
//! tiles of 256 hashes, served at `tile/<L>/<N>[.p/<W>]`.
//!
//! A tile at level `L` holds hashes of tree level `8 * L`; a node of tree
//! level `l` lives in the tile of level `l / 8`, and when `l % 8 != 0` its
//! hash is the perfect subtree over `2^(l % 8)` consecutive tile entries.
//! `read_tile` builds a tile from stored node hashes (what the hub serves);
//! `TileHashReader` answers `merkle::HashReader` from tiles (what a tile
//! client or an auditor builds proofs from). Proofs built from tiles fetched
//! from someone else are only as good as `merkle::verify_*` against a
//! signed checkpoint says they are, which is all they need to be.

use std::collections::HashMap;

use super::merkle::{node_hash, Hash, HashReader, NodeId, HASH_SIZE};

/// Tree levels per tile level.
pub const TILE_HEIGHT: u8 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Highest tile level the spec allows in a path.
pub const MAX_TILE_LEVEL: u8 = 63;
/// Longer than any valid tile path (`tile/63/x018/.../615.p/255`).
pub const MAX_TILE_PATH_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError<E> {
    #[error("malformed tile path")]
    BadPath,
    #[error("no tree has this tile")]
    TileOutsideTree,
    #[error("node {0:?} is not in the tree")]
    NodeOutsideTree(NodeId),
    #[error("tile {path} has {got} bytes, not {want}")]
    BadTileData {
        path: String,
        got: usize,
        want: usize,
    },
    #[error("the reader returned {got} items for {asked}")]
    ShortRead { asked: usize, got: usize },
    #[error("reading tiles: {0}")]
    Read(E),
}

/// One tile: `width` hashes (1..=256) of tile level `level`, starting at
/// entry `index * 256` of that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub level: u8,
    pub index: u64,
    pub width: u16,
}

/// Entries (hashes) at tile level `level` in a tree of `size` leaves.
fn entries_at(level: u8, size: u64) -> u64 {
    let shift = u32::from(level) * u32::from(TILE_HEIGHT);
    if shift >= 64 {
        0
    } else {
        size >> shift
    }
}

impl Tile {
    pub fn is_full(&self) -> bool {
        u64::from(self.width) == TILE_WIDTH
    }

    /// `tile/<L>/<N>[.p/<W>]`, N in 3-digit groups, all but the last
    /// prefixed with `x`.
    pub fn path(&self) -> String {
        let mut groups = vec![format!("{:03}", self.index % 1000)];
        let mut n = self.index / 1000;
        while n > 0 {
            groups.push(format!("x{:03}", n % 1000));
            n /= 1000;
        }
        groups.reverse();
        let mut out = format!("tile/{}/{}", self.level, groups.join("/"));
        if !self.is_full() {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }

    /// Parses a hash tile path strictly: only the form `path` writes.
    pub fn parse_path(path: &str) -> Result<Self, TileError<std::convert::Infallible>> {
        if path.len() > MAX_TILE_PATH_LEN || !path.is_ascii() {
            return Err(TileError::BadPath);
        }
        let rest = path.strip_prefix("tile/").ok_or(TileError::BadPath)?;
        let (level, rest) = rest.split_once('/').ok_or(TileError::BadPath)?;
        let level = parse_decimal(level)
            .filter(|l| *l <= u64::from(MAX_TILE_LEVEL))
            .ok_or(TileError::BadPath)? as u8;
        let (index_part, width) = match rest.split_once(".p/") {
            Some((n, w)) => {
                let w = parse_decimal(w)
                    .filter(|w| (1..TILE_WIDTH).contains(w))
                    .ok_or(TileError::BadPath)?;
                (n, w as u16)
            }
            None => (rest, TILE_WIDTH as u16),
        };
        let groups: Vec<&str> = index_part.split('/').collect();
        let mut index: u64 = 0;
        for (i, g) in groups.iter().enumerate() {
            let digits = if i + 1 < groups.len() {
                g.strip_prefix('x').ok_or(TileError::BadPath)?
            } else {
                g
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TileError::BadPath);
            }
            let d: u64 = digits.parse().map_err(|_| TileError::BadPath)?;
            index = index
                .checked_mul(1000)
                .and_then(|n| n.checked_add(d))
                .ok_or(TileError::BadPath)?;
        }
        let tile = Self {
            level,
            index,
            width,
        };
        // Leading zero groups ("x000/001") would name the same tile twice.
        if tile.path() != path {
            return Err(TileError::BadPath);
        }
        Ok(tile)
    }

    /// The tree nodes whose hashes this tile holds, in order; `None` for a
    /// tile no `u64` tree has (tile levels 8 to 63 are valid in a path but
    /// would be tree levels of 64 and more).
    pub fn nodes(&self) -> Option<Vec<NodeId>> {
        let level = self.level.checked_mul(TILE_HEIGHT).filter(|l| *l < 64)?;
        let start = self.index.checked_mul(TILE_WIDTH)?;
        start.checked_add(u64::from(self.width))?;
        Some(
            (0..u64::from(self.width))
                .map(|i| NodeId {
                    level,
                    index: start + i,
                })
                .collect(),
        )
    }

    /// Whether every hash of this tile exists in a tree of `size` leaves
    /// (then its content never changes).
    pub fn within(&self, size: u64) -> bool {
        self.level <= MAX_TILE_LEVEL
            && (1..=TILE_WIDTH).contains(&u64::from(self.width))
            && self
                .index
                .checked_mul(TILE_WIDTH)
                .and_then(|s| s.checked_add(u64::from(self.width)))
                .is_some_and(|end| end <= entries_at(self.level, size))
    }
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// The tiles of a tree of `new` leaves that a tree of `old` leaves did not
/// have (full tiles, then the partial one, level by level): what to
/// publish after growing from `old` to `new`. `tiles_between(0, n)` is
/// every tile of the tree, about n / 255 of them.
pub fn tiles_between(old: u64, new: u64) -> Vec<Tile> {
    let mut out = Vec::new();
    for level in 0..=MAX_TILE_LEVEL {
        let (old_n, new_n) = (entries_at(level, old), entries_at(level, new));
        if new_n == 0 {
            break;
        }
        if old_n >= new_n {
            continue;
        }
        for index in old_n / TILE_WIDTH..new_n / TILE_WIDTH {
            out.push(Tile {
                level,
                index,
                width: TILE_WIDTH as u16,
            });
        }
        let width = new_n % TILE_WIDTH;
        if width > 0 {
            out.push(Tile {
                level,
                index: new_n / TILE_WIDTH,
                width: width as u16,
            });
        }
    }
    out
}

/// Where a node's hash lives: tile `(tile_level, tile_index)`, entries
/// `offset .. offset + count` (count = 2^(tree level % 8); the hash is the
/// perfect subtree over them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileSlot {
    pub tile_level: u8,
    pub tile_index: u64,
    pub offset: u64,
    pub count: u64,
}

/// The tile slot of `node`, or `None` for a node past any `u64` tree.
pub fn slot_of(node: NodeId) -> Option<TileSlot> {
    let tile_level = node.level / TILE_HEIGHT;
    let sub = u32::from(node.level % TILE_HEIGHT);
    node.leaf_range()?;
    let first = node.index.checked_mul(1u64 << sub)?;
    Some(TileSlot {
        tile_level,
        tile_index: first / TILE_WIDTH,
        offset: first % TILE_WIDTH,
        count: 1u64 << sub,
    })
}

/// A tile's bytes (its hashes concatenated) from stored node hashes.
pub fn read_tile<R: HashReader>(tile: Tile, reader: &R) -> Result<Vec<u8>, TileError<R::Error>> {
    let nodes = tile.nodes().ok_or(TileError::TileOutsideTree)?;
    let hashes = reader.read_hashes(&nodes).map_err(TileError::Read)?;
    if hashes.len() != nodes.len() {
        return Err(TileError::ShortRead {
            asked: nodes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes.concat())
}

/// Where tile bytes come from (a cache, HTTP, the store).
pub trait TileReader {
    type Error;
    /// The bytes of each tile, in order.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, Self::Error>;
}

/// `merkle::HashReader` over the tiles of a tree of `size` leaves.
pub struct TileHashReader<'a, T> {
    pub size: u64,
    pub tiles: &'a T,
}

/// The perfect subtree hash over `entries` (a power-of-two count).
fn subtree_of(entries: &[u8]) -> Hash {
    if entries.len() <= HASH_SIZE {
        let mut h = [0u8; HASH_SIZE];
        h[..entries.len()].copy_from_slice(entries);
        return h;
    }
    let (l, r) = entries.split_at(entries.len() / 2);
    node_hash(&subtree_of(l), &subtree_of(r))
}

impl<T: TileReader> HashReader for TileHashReader<'_, T> {
    type Error = TileError<T::Error>;

    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        let mut wanted: Vec<Tile> = Vec::new();
        let mut order: HashMap<Tile, usize> = HashMap::new();
        let mut slots = Vec::with_capacity(nodes.len());
        for &node in nodes {
            let slot = slot_of(node).ok_or(TileError::NodeOutsideTree(node))?;
            // The tile as it stands at `size`: full, or partial at the edge.
            let available = entries_at(slot.tile_level, self.size)
                .saturating_sub(slot.tile_index.saturating_mul(TILE_WIDTH));
            let width = available.min(TILE_WIDTH);
            if slot.offset + slot.count > width {
                return Err(TileError::NodeOutsideTree(node));
            }
            let tile = Tile {
                level: slot.tile_level,
                index: slot.tile_index,
                width: width as u16,
            };
            let at = *order.entry(tile).or_insert_with(|| {
                wanted.push(tile);
                wanted.len() - 1
            });
            slots.push((at, slot));
        }
        let data = self.tiles.read_tiles(&wanted).map_err(TileError::Read)?;
        if data.len() != wanted.len() {
            return Err(TileError::ShortRead {
                asked: wanted.len(),
                got: data.len(),
            });
        }
        for (tile, bytes) in wanted.iter().zip(&data) {
            let want = usize::from(tile.width) * HASH_SIZE;
            if bytes.len() != want {
                return Err(TileError::BadTileData {
                    path: tile.path(),
                    got: bytes.len(),
                    want,
                });
            }
        }
        Ok(slots
            .into_iter()
            .map(|(at, slot)| {
                let start = slot.offset as usize * HASH_SIZE;
                let end = start + slot.count as usize * HASH_SIZE;
                subtree_of(&data[at][start..end])
            })
            .collect())
    }
}

#[cfg(test)]
mod tests;
