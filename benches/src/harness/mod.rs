//! The comparison harness behind `compare`: processes and their CPU time (`proc`), load
//! tools and workloads (`tools`), servers under test (`servers`), the run loop
//! (`compare`), results (`report`, `chart`), the seed study (`seed`) and its app servers
//! (`appserver`).

pub mod appserver;
pub mod chart;
pub mod compare;
pub mod proc;
pub mod report;
pub mod seed;
pub mod servers;
pub mod tools;
