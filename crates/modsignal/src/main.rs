//! `modsignal`: see `modsignal --help`, and the README.

fn main() -> anyhow::Result<()> {
    modsignal::cli::main_with_args(std::env::args_os())
}
