//! k8s Service → core LbService (being written).
