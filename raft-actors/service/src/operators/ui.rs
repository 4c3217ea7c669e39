//! `GET /ui`: the live cluster page, one self-contained HTML file
//! (`ui.html`: inline CSS and JS, nothing fetched from elsewhere) that
//! polls this node's `/cluster/status` once a second.
//!
//! The page only reads: it must never call anything but
//! `/cluster/status`.

use actix_web::HttpResponse;

/// The page, compiled in.
pub const PAGE: &str = include_str!("ui.html");

/// `GET /ui`.
pub(crate) async fn handler() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

#[cfg(test)]
mod tests {
    use super::PAGE;

    #[test]
    fn the_page_is_self_contained_and_reads_only_the_cluster_status() {
        for outside in ["src=\"http", "href=\"http", "@import", "url(http"] {
            assert!(!PAGE.contains(outside), "fetches from outside: {outside}");
        }
        let fetches: Vec<_> = PAGE.match_indices("fetch(").collect();
        assert_eq!(fetches.len(), 1);
        assert!(PAGE.contains("fetch(\"/cluster/status\""));
    }
}
