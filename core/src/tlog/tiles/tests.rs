use std::collections::HashMap;
use std::convert::Infallible;

use super::*;
use crate::tlog::merkle::{
    leaf_hash, prove_consistency, prove_inclusion, tree_hash, verify_consistency, verify_inclusion,
    TreeBuilder,
};

fn t(level: u8, index: u64, width: u16) -> Tile {
    Tile {
        level,
        index,
        width,
    }
}

#[test]
fn paths_follow_the_spec() {
    assert_eq!(t(0, 1234067, 256).path(), "tile/0/x001/x234/067");
    assert_eq!(t(0, 0, 256).path(), "tile/0/000");
    assert_eq!(t(0, 1, 5).path(), "tile/0/001.p/5");
    assert_eq!(t(5, 123456078, 2).path(), "tile/5/x123/x456/078.p/2");
    assert_eq!(t(1, 1000, 256).path(), "tile/1/x001/000");
    assert_eq!(
        t(63, u64::MAX, 255).path(),
        "tile/63/x018/x446/x744/x073/x709/x551/615.p/255"
    );
    for tile in [
        t(0, 1234067, 256),
        t(0, 0, 256),
        t(0, 1, 5),
        t(5, 123456078, 2),
        t(2, 999, 1),
        t(63, u64::MAX, 255),
    ] {
        assert_eq!(Tile::parse_path(&tile.path()), Ok(tile));
    }
}

#[test]
fn malformed_paths_are_refused() {
    for bad in [
        "",
        "tile",
        "tile/0",
        "tile/0/",
        "tile/0/1",
        "tile/0/01",
        "tile/0/0001",
        "tile/00/001",
        "tile/-1/001",
        "tile/64/001",
        "tile/0/001.p/0",
        "tile/0/001.p/256",
        "tile/0/001.p/05",
        "tile/0/001.p/",
        "tile/0/001.p",
        "tile/5/123/456/078",
        "tile/5/x123/x456/x078",
        "tile/0/x000/001",
        "tile/0/x001/x234/067/",
        "/tile/0/001",
        "tile/entries/001",
        "tile/data/001",
        "tile/0/+01",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x999/x999/x999/x999/x999/x999/x999/999",
        "tile/4/0/001",
        "tile/0/٠٠١",
    ] {
        assert!(Tile::parse_path(bad).is_err(), "{bad:?}");
    }
    let long = format!("tile/0/{}001", "x000/".repeat(20));
    assert!(Tile::parse_path(&long).is_err());
}

#[test]
fn tiles_of_a_tree_follow_the_spec_examples() {
    // "a tree of size 70,000 will be represented by 273 full level 0 tiles,
    // one partial level 0 tile of width 112, one full level 1 tile, one
    // partial level 1 tile of width 17, and one partial level 2 tile of
    // width 1."
    let tiles = tiles_between(0, 70_000);
    let full0 = tiles.iter().filter(|t| t.level == 0 && t.is_full()).count();
    assert_eq!(full0, 273);
    let rest: Vec<Tile> = tiles
        .iter()
        .copied()
        .filter(|t| !(t.level == 0 && t.is_full()))
        .collect();
    assert_eq!(
        rest,
        vec![t(0, 273, 112), t(1, 0, 256), t(1, 1, 17), t(2, 0, 1)]
    );
    // "a tree of size 256 will be represented by a full level 0 tile and a
    // partial level 1 tile of width 1."
    assert_eq!(tiles_between(0, 256), vec![t(0, 0, 256), t(1, 0, 1)]);
    assert_eq!(tiles_between(0, 0), vec![]);
    assert_eq!(tiles_between(5, 5), vec![]);
    assert_eq!(tiles_between(100, 101), vec![t(0, 0, 101)]);
    assert_eq!(
        tiles_between(255, 257),
        vec![t(0, 0, 256), t(0, 1, 1), t(1, 0, 1)]
    );
    assert_eq!(tiles_between(256, 300), vec![t(0, 1, 44)]);
    // The biggest tree has 8 levels of tiles and no panic.
    assert_eq!(
        tiles_between(u64::MAX - 1, u64::MAX),
        vec![t(0, u64::MAX / 256, 255)]
    );
    let carry = tiles_between((1 << 56) - 1, 1 << 56);
    assert_eq!(carry.len(), 8);
    assert_eq!(carry.last(), Some(&t(7, 0, 1)));
    for tile in tiles_between(0, 70_000) {
        assert!(tile.within(70_000));
    }
    assert!(!t(0, 273, 113).within(70_000));
    assert!(!t(2, 0, 2).within(70_000));
    assert!(!t(0, u64::MAX, 256).within(u64::MAX));
}

#[test]
fn node_slots() {
    let slot = |level, index| slot_of(NodeId { level, index }).unwrap();
    assert_eq!(
        slot(0, 1000),
        TileSlot {
            tile_level: 0,
            tile_index: 3,
            offset: 232,
            count: 1
        }
    );
    assert_eq!(
        slot(3, 40),
        TileSlot {
            tile_level: 0,
            tile_index: 1,
            offset: 64,
            count: 8
        }
    );
    assert_eq!(
        slot(8, 5),
        TileSlot {
            tile_level: 1,
            tile_index: 0,
            offset: 5,
            count: 1
        }
    );
    assert_eq!(
        slot(17, 3),
        TileSlot {
            tile_level: 2,
            tile_index: 0,
            offset: 6,
            count: 2
        }
    );
    assert_eq!(
        slot_of(NodeId {
            level: 64,
            index: 0
        }),
        None
    );
    assert_eq!(
        slot_of(NodeId {
            level: 8,
            index: u64::MAX
        }),
        None
    );
}

/// Node hashes as the hub stores them, and tiles as it serves them.
#[derive(Default)]
struct Store(HashMap<NodeId, Hash>);

impl HashReader for Store {
    type Error = NodeId;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, NodeId> {
        nodes
            .iter()
            .map(|n| self.0.get(n).copied().ok_or(*n))
            .collect()
    }
}

impl TileReader for Store {
    type Error = TileError<NodeId>;
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, Self::Error> {
        tiles.iter().map(|t| read_tile(*t, self)).collect()
    }
}

fn grow(n: u64) -> (Store, Vec<Hash>, Vec<Hash>) {
    let mut b = TreeBuilder::new();
    let mut store = Store::default();
    let mut leaves = Vec::new();
    let mut roots = vec![b.root()];
    for i in 0..n {
        let leaf = leaf_hash(&i.to_be_bytes());
        leaves.push(leaf);
        store.0.extend(b.append(leaf).unwrap());
        roots.push(b.root());
    }
    (store, leaves, roots)
}

#[test]
fn proofs_from_tiles_equal_proofs_from_stored_nodes() {
    let (store, leaves, roots) = grow(70_000);
    let sizes = [
        1u64, 2, 7, 255, 256, 257, 511, 512, 513, 1000, 65_535, 65_536, 65_537, 70_000,
    ];
    for &size in &sizes {
        let tiles = TileHashReader {
            size,
            tiles: &store,
        };
        assert_eq!(tree_hash(&tiles, size).unwrap(), roots[size as usize]);
        let mut indexes: Vec<u64> = (0..size.min(300)).collect();
        indexes.extend([size / 2, size - 1, size.saturating_sub(257)]);
        for &i in &indexes {
            let from_tiles = prove_inclusion(&tiles, i, size).unwrap();
            assert_eq!(from_tiles, prove_inclusion(&store, i, size).unwrap());
            verify_inclusion(
                i,
                size,
                &leaves[i as usize],
                &from_tiles,
                &roots[size as usize],
            )
            .unwrap();
        }
        for &old in &sizes {
            if old <= size {
                let from_tiles = prove_consistency(&tiles, old, size).unwrap();
                assert_eq!(from_tiles, prove_consistency(&store, old, size).unwrap());
                verify_consistency(
                    old,
                    size,
                    &roots[old as usize],
                    &roots[size as usize],
                    &from_tiles,
                )
                .unwrap();
            }
        }
    }
}

#[test]
fn tile_readers_refuse_nodes_outside_the_tree_and_bad_data() {
    let (store, _, _) = grow(300);
    let tiles = TileHashReader {
        size: 300,
        tiles: &store,
    };
    assert!(matches!(
        tiles.read_hashes(&[NodeId::leaf(300)]),
        Err(TileError::NodeOutsideTree(_))
    ));
    assert!(matches!(
        tiles.read_hashes(&[NodeId {
            level: 3,
            index: 37
        }]),
        Err(TileError::NodeOutsideTree(_))
    ));
    assert!(tiles
        .read_hashes(&[NodeId {
            level: 3,
            index: 36
        }])
        .is_ok());

    struct Short;
    impl TileReader for Short {
        type Error = Infallible;
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, Infallible> {
            Ok(tiles.iter().map(|_| vec![0; 31]).collect())
        }
    }
    let short = TileHashReader {
        size: 300,
        tiles: &Short,
    };
    assert!(matches!(
        short.read_hashes(&[NodeId::leaf(0)]),
        Err(TileError::BadTileData { .. })
    ));
    // A tile read from stored nodes holds exactly its hashes.
    let tile = read_tile(t(0, 1, 44), &store).unwrap();
    assert_eq!(tile.len(), 44 * 32);
    assert_eq!(&tile[..32], &store.0[&NodeId::leaf(256)]);
    assert!(read_tile(t(0, 1, 45), &store).is_err());
    // Valid paths, but tiles no u64 tree has: an error, not an overflow.
    for tile in [
        t(8, 0, 1),
        t(32, 0, 256),
        t(63, u64::MAX, 255),
        t(0, u64::MAX, 256),
    ] {
        assert_eq!(tile.nodes(), None);
        assert!(matches!(
            read_tile(tile, &store),
            Err(TileError::TileOutsideTree)
        ));
    }
    assert_eq!(
        t(7, 0, 1).nodes(),
        Some(vec![NodeId {
            level: 56,
            index: 0
        }])
    );
}
