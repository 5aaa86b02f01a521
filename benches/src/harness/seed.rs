//! The seed study (placeholder while it is written).
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SeedArgs {
    /// Where uring-server and uring-load are [default: beside this binary].
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
}

pub fn run(_a: &SeedArgs, _bin: &Path, _cmd: &str) -> Result<PathBuf, String> {
    Err("not yet".into())
}
