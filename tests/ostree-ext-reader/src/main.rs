//! `ostree-ext-cli container …`: ostree-ext's own command-line interface,
//! nothing added, so the tests read and write OS images with the code
//! rpm-ostree and bootc use.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    ostree_ext::cli::run_from_iter(std::env::args_os()).await
}
