//! The transparency log in the C2SP tlog-tiles layout on the TAXII
//! listener, authenticated like TAXII: `GET /log/checkpoint` and
//! `GET /log/tile/<L>/<N>[.p/<W>]` (hash tiles only; entry tiles are not
//! served, entries being statements some callers may not see). Only tiles
//! inside the latest checkpoint exist; their bytes never change, so full
//! tiles are cached as immutable.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use isac_core::tlog::tiles::Tile;

use super::{not_found, Body, Reply, Taxii};
use crate::app;

fn bytes(body: Vec<u8>, content_type: &'static str, cache: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("cache-control", HeaderValue::from_static(cache));
    r
}

/// `rest` is the path after `/log/`.
pub(super) async fn resource(t: &Taxii, rest: &str) -> Reply {
    if rest == "checkpoint" {
        let latest = app::log::served(&t.hub).await?;
        return Ok(bytes(
            latest.note.into_bytes(),
            "text/plain; charset=utf-8",
            "no-cache",
        ));
    }
    let tile = Tile::parse_path(rest).map_err(|_| not_found())?;
    let size = app::log::latest(&t.hub).await?.size;
    if !tile.within(size) {
        return Err(not_found());
    }
    let nodes = tile.nodes().ok_or_else(not_found)?;
    let hashes = t.hub.store.log_hashes(nodes).await?;
    let cache = if tile.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(bytes(hashes.concat(), "application/octet-stream", cache))
}
