//! `edgetrace` binary: a thin wrapper over the library's CLI.

fn main() {
    std::process::exit(edgetrace::cli::main());
}
