pub mod api;
pub mod core;
