//! The IP allocator (being written).
#![allow(missing_docs, unused)]
use super::{
    config::Pool,
    service::{LbService, ServiceKey},
};
use std::net::IpAddr;
pub struct Allocator;
pub struct Assignment {
    pub pool: String,
    pub ips: Vec<IpAddr>,
}
#[derive(Default)]
pub struct PoolStats {
    pub total_v4: u128,
    pub assigned_v4: u128,
    pub total_v6: u128,
    pub assigned_v6: u128,
}
#[derive(Debug, thiserror::Error)]
#[error("stub")]
pub struct AllocError;
impl Allocator {
    pub fn new<'a>(p: impl IntoIterator<Item = &'a Pool>) -> Self {
        Allocator
    }
    pub fn restore(&mut self, s: &LbService, ips: &[IpAddr]) -> Result<Assignment, AllocError> {
        Err(AllocError)
    }
    pub fn allocate(&mut self, s: &LbService) -> Result<Assignment, AllocError> {
        Err(AllocError)
    }
    pub fn pool_stats(&self, p: &str) -> Option<PoolStats> {
        None
    }
}
