//! Simulator tests with toy endpoints.
