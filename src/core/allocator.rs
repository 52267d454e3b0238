//! The IP allocator (being written).
