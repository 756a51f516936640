//! Business features, one folder each: handlers (`api.rs`), types (`model.rs`) and SQL
//! (`repo.rs`) together, so a feature can be copied or deleted in one move.

pub mod accounts;
pub mod catalog;
pub mod orders;
pub mod reports;
