//! Publishers: side effects only. They post or write what `report` rendered, and never format.

pub mod github;
