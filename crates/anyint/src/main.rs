//! The `anyint` binary: all logic lives in the library; this only hands over to the CLI.

fn main() -> std::process::ExitCode {
    anyint::cli::main()
}
