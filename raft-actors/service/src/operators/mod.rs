//! What operators ask every node, beside the cluster API: `GET /health`
//! (a probe), `GET /cluster/status` (every member at a glance) and
//! `GET /ui` (the live page that shows it).
//!
//! Read-only: nothing here changes the cluster or waits on a quorum.

pub mod cluster_status;
pub mod health;
pub mod ui;

use actix_web::web;

use super::Service;

/// Registers `/health`, `/cluster/status` and `/ui`.
pub fn routes<S: Service>(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health::handler::<S>))
        .route(
            "/cluster/status",
            web::get().to(cluster_status::handler::<S>),
        )
        .route("/ui", web::get().to(ui::handler));
}
