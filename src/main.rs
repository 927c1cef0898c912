//! The `kpo` binary: everything lives in the library; see `kpo::cli`.

fn main() -> std::process::ExitCode {
    kpo::cli::main()
}
